"""The router answering 500: bounded requests, a clear reason, a failed task, cost still counted."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import pytest


@pytest.mark.router
async def test_router_500_fails_step_after_n_requests(
    stack: Any, demo_scripts: Any, record_history: Any
) -> None:
    key = f"[script:{secrets.token_hex(4)}]"
    # First model turn answers normally (asks for lookup_order); every later call is a 500.
    r = await demo_scripts.post(
        "/_demo/scripts",
        json={
            "key": key,
            "responses": [{"default": True}, {"status": 500, "message": "upstream exploded"}],
            "repeat_last": True,
        },
    )
    assert r.status_code in (200, 201), r.text
    order = stack.make_order("50.00")
    task = await stack.submit(f"Refund 20 EUR on order {order}. {key}")
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})

    assert done["status"] == "failed"
    assert "router failed after 3 requests" in done["error"]
    assert done["steps"][0]["status"] == "failed"
    turn2 = [c for c in done["model_calls"] if c["turn"] == 2]
    assert [c["attempt"] for c in turn2] == [1, 2, 3]  # at most N=3 HTTP requests for the logical call
    assert all(not c["ok"] and c["http_status"] and c["http_status"] >= 500 for c in turn2)
    turn1 = [c for c in done["model_calls"] if c["turn"] == 1]
    assert len(turn1) == 1 and turn1[0]["ok"] and Decimal(turn1[0]["cost_usd"]) > 0
    # The task's cost is every recorded request, failed attempts included.
    assert Decimal(done["cost"]["total_usd"]) == sum(Decimal(c["cost_usd"]) for c in done["model_calls"])
    assert done["cost"]["model_calls"] == 4

    calls = (await demo_scripts.get("/_demo/calls", params={"key": key})).json()["calls"]
    attempts_seen = {
        c["headers"].get("x-frontdesk-attempt")
        for c in calls
        if c["headers"].get("x-frontdesk-request-id", "").endswith("/2")
    }
    assert attempts_seen == {"1", "2", "3"}
    await record_history(task["id"], "router_failed")
    request_ids = {c["headers"].get("x-frontdesk-request-id") for c in calls}
    assert request_ids == {f"{task['id']}/handle_refund/1", f"{task['id']}/handle_refund/2"}
    forwarded = calls[0]["headers"]
    assert forwarded.get("x-frontdesk-tenant") == "acme"
    # (LiteLLM consumes `traceparent` for its own spans and does not pass it upstream; the
    # router client's unit tests check that it is sent.)
