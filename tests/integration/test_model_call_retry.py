"""A model-call activity retried after the router already answered (the worker died before the
activity completed) returns the recorded answer: no second request, the cost counted once."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from decimal import Decimal
from typing import Any

import httpx
from repo_paths import SHIPPED_POLICIES
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import load_service
from orchestrator.contracts import ChatMessage, ModelCallInput, RoutingFacts
from orchestrator.db import session_scope
from orchestrator.models import ModelCall, Task
from workers.activities.model_calls import ModelActivities
from workers.router_client import RouterClient


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "model": "tier-slm",
            "choices": [
                {"message": {"role": "assistant", "content": '{"ok": true}'}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10},
        },
        headers={"x-litellm-response-cost": "0.00002"},
    )


def running_call(db: Any) -> ModelCallInput:
    """A model call of a running task, as the workflow would schedule it."""
    task = Task(
        tenant_id="acme", requester_id=db.user_ids["riley"], workflow_name="summary",
        workflow_version="1", input_text="x", definition_json="{}", status="running",
    )  # fmt: skip
    with session_scope(db.engine) as session:
        session.add(task)
    return ModelCallInput(
        facts=RoutingFacts(
            tenant_id="acme", requester_id="u", task_id=task.id, step="s", agent="a",
            category="c", risk_class="low", data_classification="internal",
        ),
        turn=1, request_id=f"{task.id}/s/{secrets.token_hex(3)}", tier="tier-slm",
        messages=[ChatMessage(role="user", content="hi")],
    )  # fmt: skip


def activities_over(db: Any, handler: Any) -> tuple[ModelActivities, RouterClient]:
    """The model-call activities with a router whose HTTP answers come from `handler`."""
    router = RouterClient(
        "http://router.test",
        "key",
        prices=PriceTable.load(SHIPPED_POLICIES / "prices.yaml"),
        transport=httpx.MockTransport(handler),
        backoff_seconds=0,
    )
    return ModelActivities(db.engine, router, load_service(db.engine, SHIPPED_POLICIES)), router


async def test_retried_call_returns_the_recorded_answer(db: Any) -> None:
    call = running_call(db)
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answer(request)

    activities, router = activities_over(db, handler)
    env = ActivityEnvironment()
    first = await env.run(activities.call, call)
    env.info = dataclasses.replace(env.info, attempt=2)  # the same call, retried by Temporal
    again = await env.run(activities.call, call)
    await router.aclose()

    assert len(requests) == 1
    assert again.message == first.message and Decimal(again.cost_usd) == Decimal("0.00002")
    with session_scope(db.engine) as session:
        rows = session.exec(select(ModelCall).where(ModelCall.request_id == call.request_id)).all()
    assert len(rows) == 1 and rows[0].ok and rows[0].response_json


async def test_model_call_heartbeats_while_the_router_is_slow(db: Any) -> None:
    """A worker that dies mid-call must be noticed by its heartbeat timeout, not after 5 minutes:
    so the activity heartbeats while it waits (the router here answers only after two beats)."""
    call = running_call(db)
    beats: list[object] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        for _ in range(300):  # at most 30 s, so a missing heartbeat fails instead of hanging
            if len(beats) >= 2:
                break
            await asyncio.sleep(0.1)
        return answer(request)

    activities, router = activities_over(db, slow)
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    result = await env.run(activities.call, call)
    await router.aclose()

    assert len(beats) >= 2
    assert result.message.content == '{"ok": true}'
