"""Benchmark: the local stack's start-up time and the refund workflow end to end.

Starts `frontdesk dev` (Temporal dev server, demo model, LiteLLM proxy, worker, API) in a
temporary state dir on free ports, then runs the refund workflow N times through the HTTP API:
submit -> checkpoint -> approve (by the bench, as soon as it is open) -> completed. From each
task's Temporal history and its recorded model calls it splits the time into:

* router: HTTP time of the model calls (LiteLLM proxy + the demo model behind it);
* activities: the rest of the activities' own run time (database writes, policy, tools);
* temporal: everything else inside the workflow (dispatching activities and workflow tasks);
* approval: the wait between the checkpoint opening and the decision (the bench is the human);
* api: from sending the POST until the workflow started.

Prints the figures; asserts nothing. Usage: `make bench` (or `python -m bench.refund_e2e --runs 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from orchestrator.db import make_engine, session_scope
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.demo.devstack.processes import ManagedProcess, free_port
from orchestrator.demo.seed import prepare_database
from orchestrator.settings import Settings
from tests.repo_paths import REPO_ROOT


@dataclass
class Run:
    total: float
    api: float
    router: float
    activities: float
    temporal: float
    approval: float


def _ts(event) -> float:  # type: ignore[no-untyped-def]
    return event.event_time.ToDatetime().timestamp()


def new_order(settings: Settings, n: int) -> str:
    """A fresh demo order per run, so every run refunds for real (none hits 'already refunded')."""
    order_id = f"ORD-{900000 + n}"
    engine = make_engine(settings.effective_database_url)
    with session_scope(engine) as session:
        session.add(
            DemoOrder(
                id=order_id,
                tenant_id="acme",
                customer="Bench",
                email="bench@example.com",
                amount=Decimal("400.00"),
                currency="EUR",
                status="delivered",
            )
        )
    engine.dispose()
    return order_id


async def one_run(api: httpx.AsyncClient, temporal: Client, tokens: dict[str, str], order_id: str) -> Run:
    requester = {"Authorization": f"Bearer {tokens['riley']}"}
    approver = {"Authorization": f"Bearer {tokens['avery']}"}
    sent = time.time()
    r = await api.post(
        "/api/tasks",
        json={
            "workflow": "refund_request@1",  # the figures compare over time: keep the workflow fixed
            "input": f"Order {order_id}: refund 150 EUR, the parcel was lost.",
        },
        headers=requester,
    )
    r.raise_for_status()
    task_id = r.json()["id"]
    while True:
        cps = (await api.get("/api/checkpoints?status=open", headers=approver)).json()["items"]
        mine = [c for c in cps if c["task_id"] == task_id]
        if mine:
            break
        await asyncio.sleep(0.01)
    d = await api.post(
        f"/api/checkpoints/{mine[0]['id']}/decision", json={"decision": "approve"}, headers=approver
    )
    d.raise_for_status()
    handle = temporal.get_workflow_handle(f"task-{task_id}")
    await handle.result()
    task = (await api.get(f"/api/tasks/{task_id}", headers=requester)).json()
    assert task["status"] == "completed" and task["output"]["action"] == "refunded", task
    history = await handle.fetch_history()

    events = history.events
    start, end = _ts(events[0]), _ts(events[-1])
    scheduled: dict[int, float] = {}
    started: dict[int, float] = {}
    activity_run = 0.0
    cp_opened = decided = 0.0
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[e.event_id] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[e.activity_task_started_event_attributes.scheduled_event_id] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = e.activity_task_completed_event_attributes.scheduled_event_id
            activity_run += _ts(e) - started[sid]
            if not decided:  # the checkpoint opens in the last activity before the decision
                cp_opened = _ts(e)  # (checkpoint.open, or the tool.step that opened it)
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            decided = _ts(e)
    router = sum(c["latency_ms"] for c in task["model_calls"]) / 1000
    approval = max(0.0, decided - cp_opened)
    # The decision's own activity runs while the main loop waits, so it is inside `approval` too.
    total = end - sent
    return Run(
        total=total,
        api=start - sent,
        router=router,
        activities=activity_run - router,
        temporal=(end - start) - activity_run - approval,
        approval=approval,
    )


def start_stack(state: Path) -> tuple[ManagedProcess, Settings, float]:
    ports = {name: free_port() for name in ("api", "router", "demo_model", "temporal", "temporal_ui")}
    env = {**os.environ, "FRONTDESK_STATE_DIR": str(state)}
    env.update({f"FRONTDESK_{k.upper()}_PORT": str(v) for k, v in ports.items()})
    log = state / "dev.log"
    began = time.monotonic()
    proc = ManagedProcess(
        name="frontdesk dev",
        argv=[sys.executable, "-m", "orchestrator.cli.main", "dev"],
        log_path=log,
        env=env,
        cwd=REPO_ROOT,
        ready_check=lambda: log.exists() and "is up" in log.read_text(),
        ready_timeout=180,
        stop_grace=30,
    )
    proc.start()
    ready = time.monotonic() - began
    settings = Settings(
        state_dir=state,
        api_port=ports["api"],
        temporal_address=f"127.0.0.1:{ports['temporal']}",
    )
    return proc, settings, ready


def p50(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as tmp:
        proc, settings, ready = start_stack(Path(tmp))
        try:
            print(f"frontdesk dev: stack ready in {ready:.1f} s (installs already done)")
            info = prepare_database(settings)  # idempotent: gives us the demo tokens
            tokens = {email.split("@")[0]: token for email, token in info.tokens}
            temporal = await Client.connect(settings.temporal_address)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=60) as api:
                await one_run(
                    api, temporal, tokens, new_order(settings, 0)
                )  # warm-up: LiteLLM's first call is slow
                results = [
                    await one_run(api, temporal, tokens, new_order(settings, i)) for i in range(1, runs + 1)
                ]
        finally:
            proc.stop()
    totals = [r.total - r.approval for r in results]
    print(f"refund workflow, {runs} runs (3 model calls, 2 tools, 1 checkpoint approved by the bench):")
    print(f"  end to end incl. approval wait  p50 {p50([r.total for r in results]):7.1f} ms")
    print(
        f"  end to end excl. approval wait  p50 {p50(totals):7.1f} ms   "
        f"min {min(totals) * 1000:.1f}  max {max(totals) * 1000:.1f}"
    )
    for label, attr in [
        ("router (LiteLLM + demo model)", "router"),
        ("activities (db, policy, tools)", "activities"),
        ("temporal (dispatch, wf tasks)", "temporal"),
        ("api (POST until workflow start)", "api"),
        ("approval wait (bench as approver)", "approval"),
    ]:
        print(f"    {label:<34} p50 {p50([getattr(r, attr) for r in results]):7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
