"""The local stack a scenario runs against: Temporal dev server, demo model, LiteLLM router, one
worker and the API, each a real process in a temporary folder on free loopback ports.

The worker can be SIGKILLed and started again, the router stopped and started, and the worker may
run code from another folder (``worker_code``: a checkout of an older commit, for before/after
figures)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus

from orchestrator.audit import verify_chain
from orchestrator.db import make_engine, session_scope
from orchestrator.demo import seed
from orchestrator.demo.catalog.tables import DemoOrder, RefundLedger
from orchestrator.demo.devstack.processes import ManagedProcess, free_port
from orchestrator.demo.devstack.supervisor import DevStack
from orchestrator.demo.model import MAX_RECORDED_CALLS
from orchestrator.models import AuditHead, ModelCall, Task
from orchestrator.settings import Settings

REPO = Path(__file__).resolve().parent.parent
REFUND_TEXT = "Refund 40 EUR on order {order}, the lamp arrived broken."  # under 100: no approval
CHECKPOINTED_TEXT = "Refund 250 EUR on order {order}, the sofa arrived broken."  # 100 to 499: one approver


def rss_mb(pids: Iterable[int]) -> float:
    """Resident memory of these processes together, in MiB (from /proc; gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


class Stack:
    def __init__(
        self,
        *,
        database_url: str = "",
        worker_code: Path | None = None,
        worker_env: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="frontdesk-reliability-"))
        self.settings = Settings(
            state_dir=self.root / "state",
            database_url=database_url,
            task_queue=f"reliability-{secrets.token_hex(3)}",
            api_port=free_port(),
            demo_model_port=free_port(),
            router_port=free_port(),
            temporal_port=free_port(),
            temporal_ui_port=free_port(),
            litellm_venv=REPO / ".frontdesk" / "litellm-venv",
            catalog_packages=["orchestrator.demo.catalog"],
        )
        self.dev = DevStack(self.settings, prepare=seed.prepare_database, out=io.StringIO())
        self.worker_code = worker_code
        self.worker_env = worker_env or {}
        self.procs: dict[str, ManagedProcess] = {}
        self.worker_starts = 0
        self.engine: Engine | None = None
        self.client: Client | None = None
        self.token = ""
        self.tokens: dict[str, str] = {}

    # -- processes --

    def _child(self, command: str, *, ready_url: str | None = None, **extra: str) -> ManagedProcess:
        env = self.dev.child_env()
        env.update(extra)
        cwd = REPO
        if command == "worker":
            env.update(self.worker_env)
            if self.worker_code is not None:  # the other checkout's packages come first on sys.path
                cwd = self.worker_code
                env["PYTHONPATH"] = str(self.worker_code)
        log_name = command if command != "worker" else f"worker-{self.worker_starts}"
        return ManagedProcess(
            name=command,
            argv=[sys.executable, "-m", "orchestrator.cli.main", command],
            env=env,
            cwd=cwd,
            log_path=self.root / "logs" / f"{log_name}.log",
            ready_url=ready_url,
            ready_timeout=120,
        )

    async def start(self) -> None:
        temporal, demo_model, router = [s for s in self.dev.stages() if isinstance(s, ManagedProcess)][:3]
        for proc in (temporal, demo_model, router):
            self.procs[proc.name] = proc
            await proc.astart()
        info = await asyncio.to_thread(seed.prepare_database, self.settings)
        self.tokens = dict(info.tokens)
        self.token = self.tokens["riley@acme.example"]
        self.engine = make_engine(self.settings.effective_database_url)
        await self.start_worker()
        api = self._child("api", ready_url=f"http://127.0.0.1:{self.settings.api_port}/readyz")
        self.procs["api"] = api
        await api.astart()
        self.client = await Client.connect(f"127.0.0.1:{self.settings.temporal_port}")

    async def start_worker(self) -> None:
        self.worker_starts += 1
        worker = self._child("worker")
        log = worker.log_path
        worker.ready_check = lambda: log.exists() and "worker polling" in log.read_text(errors="replace")
        self.procs["worker"] = worker
        await worker.astart()

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: no shutdown, no heartbeat, no goodbye."""
        worker = self.procs["worker"]
        assert worker.pid is not None
        os.killpg(worker.pid, signal.SIGKILL)
        worker.stop()  # reaps it

    def kill_temporal(self) -> None:
        """SIGKILL the Temporal dev server's whole process group (its state stays in --db-filename)."""
        temporal = self.procs["temporal"]
        assert temporal.pid is not None
        os.killpg(temporal.pid, signal.SIGKILL)
        temporal.stop()  # reaps it

    async def start_temporal(self) -> None:
        """Start the dev server again on the same ports and database file; ready when it serves."""
        await self.procs["temporal"].astart()

    def pids(self, name: str) -> list[int]:
        """The processes of a child's group (the CLI wrapper and what it runs)."""
        proc = self.procs[name]
        if proc.pid is None:
            return []
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[2]) == proc.pid:
                    out.append(int(entry.name))
        return out

    def rss_mb(self, name: str) -> float:
        """Resident memory of a child's whole process group, in MiB."""
        return rss_mb(self.pids(name))

    async def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            await proc.astop()
        if self.engine is not None:
            self.engine.dispose()

    # -- tasks --

    def add_orders(self, n: int) -> list[str]:
        orders = [f"ORD-{secrets.randbelow(10**8):08d}" for _ in range(n)]
        assert self.engine is not None
        with session_scope(self.engine) as session:
            for order in orders:
                session.add(DemoOrder(id=order, tenant_id="acme", customer="C", email="c@example.com",
                                      amount=Decimal("600.00"), currency="EUR", status="delivered"))  # fmt: skip
        return orders

    async def submit_refunds(
        self, orders: list[str], suffix: list[str] | None = None, text: str = REFUND_TEXT
    ) -> list[str]:
        """One refund task per order; `suffix[i]` is appended to task i's text (a demo-model script key)."""
        ids = []
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.settings.api_port}", timeout=30
        ) as api:
            for i, order in enumerate(orders):
                body = text.format(order=order) + (f" {suffix[i]}" if suffix else "")
                r = await api.post(
                    "/api/tasks",
                    json={"workflow": "refund_request@1", "input": body},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
                r.raise_for_status()
                ids.append(r.json()["id"])
        return ids

    def task_rows(self, ids: list[str]) -> dict[str, Task]:
        assert self.engine is not None
        with session_scope(self.engine) as session:
            return {t.id: t for t in session.exec(select(Task).where(Task.id.in_(ids)))}  # type: ignore[attr-defined]

    def refunds_per_task(self, ids: list[str]) -> dict[str, int]:
        assert self.engine is not None
        counts = dict.fromkeys(ids, 0)
        with session_scope(self.engine) as session:
            for row in session.exec(select(RefundLedger).where(RefundLedger.task_id.in_(ids))):  # type: ignore[attr-defined]
                counts[row.task_id] += 1
        return counts

    async def model_requests(self) -> list[dict[str, Any]]:
        """Every request that reached the demo model (its last 500), as it recorded them."""
        url = f"http://127.0.0.1:{self.settings.demo_model_port}/_demo/calls"
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.get(url)
            r.raise_for_status()
            return list(r.json()["calls"])

    async def unrecorded_requests(self, ids: list[str]) -> dict[str, Any]:
        """Requests that reached the model compared with the `ModelCall` rows of the same tasks.

        The worker sends `x-frontdesk-request-id`, `-task-id` and `-attempt` with every request and
        the router passes them on, so each request the model saw is matched to the rows of the same
        (request id, attempt); a retried activity repeats the pair, so the rows of every activity
        attempt count. `missing`: requests beyond the rows written for their pair."""
        calls = await self.model_requests()
        wanted = set(ids)
        hits: Counter[tuple[str, int]] = Counter()
        unattributed = 0
        for c in calls:
            h = c["headers"]
            task = unquote(h.get("x-frontdesk-task-id", ""))
            if not task:
                unattributed += 1
                continue
            if task in wanted:
                hits[
                    (
                        unquote(h.get("x-frontdesk-request-id", "")),
                        int(h.get("x-frontdesk-attempt", "0") or 0),
                    )
                ] += 1
        assert self.engine is not None
        rows: Counter[tuple[str, int]] = Counter()
        statuses: Counter[str] = Counter()
        with session_scope(self.engine) as session:
            for row in session.exec(select(ModelCall).where(col(ModelCall.task_id).in_(ids))):
                rows[(row.request_id, row.attempt)] += 1
                statuses[row.status] += 1
        missing = {f"{k[0]}#{k[1]}": n - rows[k] for k, n in hits.items() if n > rows[k]}
        return {
            "reached_model": sum(hits.values()),
            "model_log_full": len(calls) >= MAX_RECORDED_CALLS,
            "unattributed": unattributed,
            "rows": sum(statuses.values()),
            "done": statuses.get("done", 0),
            "interrupted": statuses.get("interrupted", 0),
            "sent": statuses.get("sent", 0),
            "missing": sum(missing.values()),
            "missing_requests": missing,
        }

    def audit_chains(self) -> dict[str, str]:
        """Every tenant's audit chain recomputed: tenant -> "ok: N events verified" or what broke."""
        assert self.engine is not None
        with session_scope(self.engine) as session:
            tenants = [h.tenant_id for h in session.exec(select(AuditHead))]
            out = {}
            for tenant in tenants:
                ok, why = verify_chain(session, tenant)
                out[tenant] = f"{'ok' if ok else 'BROKEN'}: {why}"
        return out

    async def workflow_statuses(self, ids: list[str]) -> dict[str, str]:
        """Temporal's view of each task's workflow (the database may be the thing that is down)."""
        assert self.client is not None
        rows = self.task_rows(ids)
        out = {}
        for task_id in ids:
            desc = await self.client.get_workflow_handle(rows[task_id].workflow_id).describe()
            status = desc.status or WorkflowExecutionStatus.RUNNING
            out[task_id] = status.name.lower()
        return out

    async def wait_ended(self, ids: list[str], within: float) -> dict[str, str]:
        """Each task's final status (from its row) once every workflow has closed, or after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            statuses = await self.workflow_statuses(ids)
            if all(s != "running" for s in statuses.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        await asyncio.sleep(1)
        rows = self.task_rows(ids)
        return {i: rows[i].status if statuses[i] == "completed" else f"workflow {statuses[i]}" for i in ids}


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
