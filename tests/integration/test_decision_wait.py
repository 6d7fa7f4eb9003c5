"""A decision (or reassignment) sent while the database cannot take writes answers within
FRONTDESK_DECISION_WAIT_SECONDS instead of waiting out the outage (up to 15 minutes): 202 when the
task accepted it (it is recorded once the database is back, exactly once, and a repeat is
recognised), 503 with Retry-After when the task's workflow did not take it (no worker).

The outage is real: another connection holds SQLite's write lock, so the record activity's writes
fail with "database is locked" and are retried, while reads (the API's checks) still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select
from webui.conftest import sign_in

from orchestrator.app import build_state, create_app
from orchestrator.db import session_scope
from orchestrator.models import Checkpoint, CheckpointDecision
from workers.worker import build_router, build_worker

pytestmark = [pytest.mark.timeout(300)]

WAIT = 3.0


@contextlib.contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Hold SQLite's write lock: every other writer waits (busy timeout), then 'database is locked'."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=60)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def bounded_app(stack: Any) -> Any:
    settings = stack.settings.model_copy(update={"decision_wait_seconds": WAIT})
    return create_app(settings, state=build_state(settings, engine=stack.db.engine, temporal=stack.client))


def decisions_on(stack: Any, checkpoint_id: str) -> list[tuple[str, str]]:
    with session_scope(stack.db.engine) as session:
        rows = session.exec(
            select(CheckpointDecision).where(CheckpointDecision.checkpoint_id == checkpoint_id)
        )
        return [(r.decider_id, r.decision) for r in rows]


async def timed_post(api: httpx.AsyncClient, path: str, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = await api.post(path, **kw)
    return r, time.monotonic() - started


async def test_a_decision_during_an_outage_is_accepted_then_recorded_once(stack: Any) -> None:
    order = stack.make_order("2000.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    path = f"/api/checkpoints/{cp['id']}/decision"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bounded_app(stack)), base_url="http://t"
    ) as api:
        with write_lock(stack.db.url):
            r, took = await timed_post(
                api, path, json={"decision": "approve", "comment": "ok"}, headers=stack.auth("avery")
            )
            assert r.status_code == 202, r.text
            assert took < WAIT + 6, took
            body = r.json()
            assert body["status"] == "accepted" and "recorded" in body["detail"], body
            assert (
                r.headers["Location"] == f"/api/checkpoints/{cp['id']}" and int(r.headers["Retry-After"]) > 0
            )
            # The person sends it again during the outage: accepted too, and refused as a repeat later.
            again, _ = await timed_post(
                api, path, json={"decision": "approve", "comment": "ok"}, headers=stack.auth("avery")
            )
            assert again.status_code == 202, again.text
            assert decisions_on(stack, cp["id"]) == []  # nothing could be written yet
            await asyncio.sleep(2)
        done = await stack.wait(task["id"], {"completed", "failed"}, timeout=120)
        assert done["status"] == "completed", done["error"]
        assert decisions_on(stack, cp["id"]) == [(stack.db.user_ids["avery"], "approve")]
        # After the outage, a repeat is told that it is recorded.
        late = await api.post(
            path, json={"decision": "approve", "comment": "ok"}, headers=stack.auth("avery")
        )
        assert late.status_code == 409 and "is recorded" in late.json()["detail"], late.text


async def test_the_web_form_flashes_that_the_decision_is_accepted(stack: Any) -> None:
    order = stack.make_order("2000.00")
    task = await stack.submit(f"Refund 250 EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    avery = await sign_in(bounded_app(stack), stack.db, "avery")
    try:
        await avery.refresh_csrf(f"/checkpoints/{cp['id']}")
        with write_lock(stack.db.url):
            r = await avery.post(f"/checkpoints/{cp['id']}/decision", {"decision": "approve"})
            assert r.status_code == 303, r.text[:300]
            assert r.headers["location"].endswith("?notice=accepted")
            page = await avery.get(r.headers["location"])
            assert "accepted by the task and will be recorded" in page.text
        done = await stack.wait(task["id"], {"completed", "failed"}, timeout=120)
        assert done["status"] == "completed", done["error"]
        assert decisions_on(stack, cp["id"]) == [(stack.db.user_ids["avery"], "approve")]
    finally:
        await avery.client.aclose()


async def test_a_decision_no_workflow_takes_answers_503_and_counts_once_when_sent_again(
    api_only: Any,
) -> None:
    stack = api_only
    order = stack.make_order("2000.00")
    async with build_router(stack.settings) as router:
        async with build_worker(stack.client, stack.settings, engine=stack.db.engine, router=router):
            task = await stack.submit(f"Refund 200 EUR on order {order}, the item was damaged.")
            cp = await stack.open_checkpoint(task["id"])
        # The worker is gone: nothing can accept the update.
        path = f"/api/checkpoints/{cp['id']}/decision"
        app = bounded_app(stack)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
            r, took = await timed_post(api, path, json={"decision": "approve"}, headers=stack.auth("avery"))
            assert r.status_code == 503, r.text
            assert took < WAIT + 8, took
            assert int(r.headers["Retry-After"]) > 0 and "nothing is recorded yet" in r.json()["detail"]
            async with build_worker(stack.client, stack.settings, engine=stack.db.engine, router=router):
                again = await api.post(path, json={"decision": "approve"}, headers=stack.auth("avery"))
                # Either the first update reached the workflow once it was back (then this says it
                # is recorded), or this one is the decision: never two.
                assert again.status_code == 200 or (
                    again.status_code == 409 and "is recorded" in again.json()["detail"]
                ), again.text
                done = await stack.wait(task["id"], {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done["error"]
    assert decisions_on(stack, cp["id"]) == [(stack.db.user_ids["avery"], "approve")]
    with session_scope(stack.db.engine) as session:
        assert session.get_one(Checkpoint, cp["id"]).status == "approved"
