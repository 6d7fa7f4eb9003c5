"""A decision recorded just before Temporal's answer was lost counts, and the person is told so."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.app import build_state, create_app


class _LostAnswer:
    """A workflow handle whose updates reach the workflow but whose answers never come back."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def execute_update(self, *args: Any, **kwargs: Any) -> Any:
        await self._handle.execute_update(*args, **kwargs)
        raise RPCError("connection lost", RPCStatusCode.UNAVAILABLE, b"")


class _Flaky:
    def __init__(self, client: Any) -> None:
        self._client = client

    def get_workflow_handle(self, workflow_id: str) -> _LostAnswer:
        return _LostAnswer(self._client.get_workflow_handle(workflow_id))


async def test_a_recorded_decision_whose_answer_was_lost_succeeds(stack: Any) -> None:
    order = stack.make_order("2000.00")
    task = await stack.submit(f"Refund 300 EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    settings = stack.settings
    app = create_app(
        settings, state=build_state(settings, engine=stack.db.engine, temporal=_Flaky(stack.client))
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        r = await api.post(
            f"/api/checkpoints/{cp['id']}/decision", json={"decision": "approve"}, headers=stack.auth("avery")
        )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    # The person retries (they could not know): the answer says the decision counted.
    again = await stack.decide(cp["id"], "approve")
    assert again.status_code == 409 and "is recorded" in again.json()["detail"], again.text
    # Someone else still hears that it was decided by another.
    other = await stack.decide(cp["id"], "reject", who="blake")
    assert other.status_code == 409 and "is recorded" not in other.json()["detail"]
    done = await stack.wait(task["id"], {"completed", "failed"})
    assert done["status"] == "completed"
