"""Router outages against the real LiteLLM proxy: a router killed for ~15 s mid-task is waited
out (the task shows it is waiting, then completes), a router that never answers fails the step
with no request counted, and a 4xx still fails at once."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ROUTER_KEY, running_stack
from repo_paths import REPO_ROOT
from sqlmodel import select
from webui.conftest import sign_in

from orchestrator.db import session_scope
from orchestrator.demo.devstack.litellm import litellm_command, litellm_env, write_litellm_config
from orchestrator.demo.devstack.processes import ManagedProcess, free_port, port_is_free
from orchestrator.models import BudgetReservation

DOWN_SECONDS = 15


def own_router(demo_model_url: str, where: Path, port: int) -> ManagedProcess:
    """A LiteLLM proxy of this test's own, like conftest's `router_url`, on a port it controls."""
    config = write_litellm_config(where / "litellm.yaml", demo_model_url=demo_model_url)
    return ManagedProcess(
        name="litellm-outage",
        argv=litellm_command(REPO_ROOT / ".frontdesk" / "litellm-venv", config, port),
        log_path=where / "litellm.log",
        env=litellm_env(ROUTER_KEY),
        ready_url=f"http://127.0.0.1:{port}/health/liveliness",
        ready_timeout=90,
    )


@pytest.fixture
async def killable_router(demo_model_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, ManagedProcess]]:
    port = free_port()
    proc = own_router(demo_model_url, tmp_path, port)
    await proc.astart()
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        await proc.astop()


def reservations(stack: Any, task_id: str) -> list[BudgetReservation]:
    with session_scope(stack.db.engine) as session:
        return list(session.exec(select(BudgetReservation).where(BudgetReservation.task_id == task_id)))


@pytest.mark.router
@pytest.mark.slow
async def test_task_rides_out_a_router_restart(
    db: Any,
    temporal_env: Any,
    killable_router: tuple[str, ManagedProcess],
    demo_model_url: str,
    tmp_path: Path,
) -> None:
    url, proc = killable_router
    port = int(url.rsplit(":", 1)[1])
    async with running_stack(db, temporal_env.client, url, demo_model_url, tmp_path) as stack:
        order = stack.make_order("300.00")
        task = await stack.submit(
            f"Customer on order {order} asks for a refund of 150 EUR: it arrived broken."
        )
        cp = await stack.open_checkpoint(task["id"])  # one model turn done; the next waits on us

        os.killpg(proc.pid or 0, signal.SIGKILL)  # the router dies, hard
        await proc.astop()
        assert port_is_free("127.0.0.1", port)
        killed = time.monotonic()
        r = await stack.decide(cp["id"], "approve")
        assert r.status_code == 200, r.text

        # The next model call finds the router gone: the task says so, and keeps running.
        note = None
        while note is None and time.monotonic() - killed < DOWN_SECONDS - 2:
            seen = await stack.task(task["id"])
            assert seen["status"] == "running", seen["error"]
            note = next((s["note"] for s in seen["steps"] if s["note"]), None)
            await asyncio.sleep(0.2)
        assert note is not None and note.startswith("waiting for the router since "), note
        assert "connection error" in note
        browser = await sign_in(stack.app, stack.db, "ada")  # the task page says so too
        page = await browser.get(f"/tasks/{task['id']}")
        await browser.client.aclose()
        assert page.status_code == 200 and "waiting for the router since " in page.text
        await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - killed)))
        seen = await stack.task(task["id"])
        assert seen["status"] == "running", seen["error"]
        assert any(s["note"] for s in seen["steps"])

        await proc.astart()  # restarting LiteLLM takes 6-9 s
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=120)
        outage = time.monotonic() - killed

    assert done["status"] == "completed", done["error"]
    assert done["output"]["action"] == "refunded"
    assert all(s["note"] is None for s in done["steps"])
    calls = done["model_calls"]
    # The refused connections of the outage are not requests: every turn is one answered request.
    assert all(c["ok"] and c["status"] == "done" for c in calls), calls
    assert len({(c["turn"], c["step"]) for c in calls}) == len(calls)
    assert Decimal(done["cost"]["total_usd"]) == sum(Decimal(c["cost_usd"]) for c in calls)
    # Waiting made no extra reservation and leaked none: one per model call, each settled.
    rows = reservations(stack, task["id"])
    assert len([r for r in rows if r.status == "settled"]) == len(calls), rows
    assert not [r for r in rows if r.status == "reserved"]
    print(f"router down {outage:.1f} s before the task completed")


@pytest.mark.router
async def test_closed_port_fails_after_the_outage_limit_with_no_request_counted(
    db: Any, temporal_env: Any, demo_model_url: str, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with running_stack(
        db, temporal_env.client, closed, demo_model_url, tmp_path, router_outage_max_seconds=3
    ) as stack:
        order = stack.make_order("80.00")
        started = time.monotonic()
        task = await stack.submit(f"Please refund 25 EUR on order {order}, one item was missing.")
        done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=60)
        took = time.monotonic() - started

    assert done["status"] == "failed"
    assert "router unreachable for 3 s" in done["error"] and "0 requests counted" in done["error"]
    assert done["model_calls"] == [] and done["cost"]["model_calls"] == 0
    assert Decimal(done["cost"]["total_usd"]) == 0
    assert 3 <= took < 45
    assert not [r for r in reservations(stack, task["id"]) if r.status == "reserved"]


@pytest.mark.router
async def test_4xx_fails_at_once_despite_a_long_outage_limit(stack: Any, demo_scripts: Any) -> None:
    assert stack.settings.router_outage_max_seconds == 600
    key = f"[script:{secrets.token_hex(4)}]"
    r = await demo_scripts.post(
        "/_demo/scripts",
        json={"key": key, "responses": [{"status": 400, "message": "no such thing"}], "repeat_last": True},
    )
    assert r.status_code in (200, 201), r.text
    order = stack.make_order("50.00")
    started = time.monotonic()
    task = await stack.submit(f"Refund 20 EUR on order {order}. {key}")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"}, timeout=60)

    assert done["status"] == "failed"
    assert "router refused the call (HTTP 400)" in done["error"]
    assert [(c["attempt"], c["http_status"]) for c in done["model_calls"]] == [(1, 400)]
    assert time.monotonic() - started < 30
