"""The offline demo model: deterministic answers, the sample workflows end to end, scripting."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from orchestrator.demo.behaviour import fill_schema, summary_answer
from orchestrator.demo.catalog.models import IssueRefundArgs, LookupOrderArgs, RefundDecision, Summary
from orchestrator.demo.chat import find_amount, find_order_id
from orchestrator.demo.model import create_app

REFUND_TEXT = "Customer on order ORD-1001 wants a refund of 40 EUR, the parcel arrived damaged."
ORDER = {
    "order_id": "ORD-1001",
    "customer": "Ada",
    "status": "delivered",
    "amount": "120.00",
    "currency": "EUR",
    "refundable_amount": "120.00",
}
MEMO = (
    "The board approved the new warehouse in Lyon. Construction starts in March and ends in "
    "October. The budget is 4 million euros, shared between logistics and IT. Hiring starts in June."
)


def tool(name: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"type": "function", "function": {"name": name, "description": name, "parameters": schema}}


REFUND_TOOLS = [tool("lookup_order", LookupOrderArgs), tool("issue_refund", IssueRefundArgs)]


def schema_format(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": model.model_json_schema()}}


def refund_body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "model": "demo-frontier",
        "messages": messages,
        "tools": REFUND_TOOLS,
        "response_format": schema_format(RefundDecision),
        "max_tokens": 800,
        **extra,
    }


def start(text: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are the refunds specialist."},
        {"role": "user", "content": text},
    ]


def answer_tool(messages: list[dict[str, Any]], message: dict[str, Any], result: Any) -> None:
    """Append the assistant's tool call and the tool's result, as Frontdesk would."""
    messages.append(message)
    content = result if isinstance(result, str) else json.dumps(result)
    messages.append({"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": content})


def only_tool_call(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    return call["function"]["name"], json.loads(call["function"]["arguments"])


def content(data: dict[str, Any]) -> str:
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert not choice["message"].get("tool_calls")
    return choice["message"]["content"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        yield c


async def chat(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json=body, **kw)
    assert response.status_code == 200, response.text
    assert response.headers["x-demo-model"] == "true"
    return response.json()


async def add_script(client: httpx.AsyncClient, key: str, steps: list[dict[str, Any]], **kw: Any) -> None:
    response = await client.post("/_demo/scripts", json={"key": key, "responses": steps, **kw})
    assert response.status_code == 201, response.text


# --- labels and discovery -------------------------------------------------------------------------


async def test_health_and_models_label_the_demo_model(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.json() == {"status": "ok", "model": "frontdesk-demo"}
    assert health.headers["x-demo-model"] == "true"
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["demo-frontier", "demo-open", "demo-slm"]


# --- the refund agent ----------------------------------------------------------------------------


async def test_refund_conversation_end_to_end(client: httpx.AsyncClient) -> None:
    messages = start(REFUND_TEXT)
    first = await chat(client, refund_body(messages))
    assert first["model"] == "demo-frontier"
    assert first["system_fingerprint"] == "frontdesk-demo-model"
    name, args = only_tool_call(first)
    assert name == "lookup_order"
    assert LookupOrderArgs.model_validate(args).order_id == "ORD-1001"

    answer_tool(messages, first["choices"][0]["message"], ORDER)
    second = await chat(client, refund_body(messages))
    name, args = only_tool_call(second)
    assert name == "issue_refund"
    refund_args = IssueRefundArgs.model_validate(args)
    assert (refund_args.order_id, refund_args.currency) == ("ORD-1001", "EUR")
    assert refund_args.amount == Decimal(40)
    assert "damaged" in refund_args.reason

    answer_tool(messages, second["choices"][0]["message"], {"refund_id": "RF-1", "amount": "40.00"})
    final = await chat(client, refund_body(messages))
    decision = RefundDecision.model_validate_json(content(final))
    assert (decision.order_id, decision.action, decision.amount) == ("ORD-1001", "refunded", Decimal(40))
    assert decision.currency == "EUR"


async def test_refund_without_named_amount_uses_the_refundable_amount(client: httpx.AsyncClient) -> None:
    messages = start("Please refund order ORD-1002 in full, the customer cancelled.")
    first = await chat(client, refund_body(messages))
    order = {**ORDER, "order_id": "ORD-1002", "currency": "USD"}
    answer_tool(messages, first["choices"][0]["message"], order)
    name, args = only_tool_call(await chat(client, refund_body(messages)))
    assert name == "issue_refund"
    assert IssueRefundArgs.model_validate(args).amount == Decimal("120.00")
    assert args["currency"] == "USD"


@pytest.mark.parametrize(
    "result",
    [
        {"error": "tool issue_refund is not allowed for this requester", "status": "denied"},
        {"status": "rejected", "comment": "Too much for a damaged parcel."},
        {"error": "ledger unavailable"},
        "Error: the refund failed",
    ],
)
async def test_refund_declined_after_denial_or_rejection(client: httpx.AsyncClient, result: Any) -> None:
    messages = start(REFUND_TEXT)
    answer_tool(messages, (await chat(client, refund_body(messages)))["choices"][0]["message"], ORDER)
    answer_tool(messages, (await chat(client, refund_body(messages)))["choices"][0]["message"], result)
    decision = RefundDecision.model_validate_json(content(await chat(client, refund_body(messages))))
    assert (decision.action, decision.amount, decision.order_id) == ("declined", Decimal(0), "ORD-1001")
    assert "colleague" in decision.customer_message


@pytest.mark.parametrize(
    ("text", "lookup"),
    [
        ("I want my money back, the parcel never arrived.", None),
        (REFUND_TEXT, {"error": "order ORD-1001 not found"}),
        (REFUND_TEXT, {**ORDER, "status": "refunded", "refundable_amount": "0.00"}),
    ],
)
async def test_refund_declined_without_a_refundable_order(
    client: httpx.AsyncClient, text: str, lookup: dict[str, Any] | None
) -> None:
    messages = start(text)
    data = await chat(client, refund_body(messages))
    if lookup is not None:
        answer_tool(messages, data["choices"][0]["message"], lookup)
        data = await chat(client, refund_body(messages))
    decision = RefundDecision.model_validate_json(content(data))
    assert decision.action == "declined" and decision.amount == 0


# --- the summary agent and other schemas ---------------------------------------------------------


async def test_summary_validates(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo-slm",
        "messages": [{"role": "system", "content": "Summarise."}, {"role": "user", "content": MEMO}],
        "response_format": schema_format(Summary),
    }
    summary = Summary.model_validate_json(content(await chat(client, body)))
    assert summary.title == "The board approved the new warehouse"
    assert summary.summary.startswith("The board approved") and "October." in summary.summary
    assert "Hiring" not in summary.summary
    assert 1 <= len(summary.key_points) <= 3


def test_summary_of_one_sentence_or_nothing_still_validates() -> None:
    Summary.model_validate(summary_answer("Sales grew, costs fell; margins improved"))
    Summary.model_validate(summary_answer(""))


class Priority(BaseModel):
    level: Literal["low", "high"]
    score: int = Field(ge=3, le=7)


class Ticket(BaseModel):
    subject: str = Field(min_length=12, max_length=40)
    ratio: float = Field(gt=0, lt=1)
    tags: list[str] = Field(min_length=2, max_length=4)
    priority: Priority
    related: list[Priority] = Field(default_factory=list)
    due: datetime
    owner: str | None = None
    urgent: bool


async def test_generic_schema_is_filled_from_the_schema_alone(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo-open",
        "messages": [{"role": "user", "content": "Open a ticket."}],
        "response_format": schema_format(Ticket),
    }
    ticket = Ticket.model_validate_json(content(await chat(client, body)))
    assert ticket.priority.level == "low" and len(ticket.tags) == 2
    Ticket.model_validate(fill_schema(Ticket.model_json_schema()))


def test_text_helpers() -> None:
    assert find_order_id("about ORD-1001 and ORD-2") == "ORD-1001"
    assert find_amount("ORD-1001: refund 12,50 € please") == ("12.50", "EUR")
    assert find_amount("refund $30 on ORD-1001") == ("30.00", "USD")
    assert find_amount("order ORD-1001 EUR") is None


# --- scripting -------------------------------------------------------------------------------------


async def test_script_500_then_default(client: httpx.AsyncClient) -> None:
    key = "[script:fail-once]"
    await add_script(client, key, [{"status": 500, "message": "boom"}, {"default": True}])
    body = refund_body(start(f"{REFUND_TEXT} {key}"))
    failed = await client.post("/v1/chat/completions", json=body)
    assert failed.status_code == 500
    assert failed.json()["error"]["message"] == "boom"
    for _ in range(2):  # the default step, then the default behaviour once the steps run out
        assert only_tool_call(await chat(client, body))[0] == "lookup_order"


async def test_repeat_last_loops_a_scripted_tool_call(client: httpx.AsyncClient) -> None:
    key = "[script:loop]"
    steps = [{"tool_calls": [{"name": "issue_refund", "arguments": "{not json"}]}]
    await add_script(client, key, steps, repeat_last=True)
    body = refund_body(start(f"{REFUND_TEXT} {key}"))
    for _ in range(3):
        call = (await chat(client, body))["choices"][0]["message"]["tool_calls"][0]
        assert call["function"] == {"name": "issue_refund", "arguments": "{not json"}


async def test_repair_turn_answers_a_valid_object(client: httpx.AsyncClient) -> None:
    key = "[script:bad-json]"
    await add_script(client, key, [{"content": "Sure! Here is your summary"}])
    messages = [{"role": "user", "content": f"{MEMO} {key}"}]
    body = {"model": "demo-slm", "messages": messages, "response_format": schema_format(Summary)}
    bad = content(await chat(client, body))
    assert bad == "Sure! Here is your summary"
    messages += [
        {"role": "assistant", "content": bad},
        {"role": "user", "content": "Your previous answer was not valid: expected JSON. Answer again."},
    ]
    summary = Summary.model_validate_json(content(await chat(client, body)))
    assert summary.title == "The board approved the new warehouse"


async def test_scripted_delay(client: httpx.AsyncClient) -> None:
    key = "[script:slow]"
    await add_script(client, key, [{"delay": 0.3, "content": "late"}, {"delay": 0.2}])
    body = {"model": "demo-slm", "messages": [{"role": "user", "content": f"Hello {key}"}]}
    started = time.monotonic()
    assert content(await chat(client, body)) == "late"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert "not an LLM" in content(await chat(client, body))
    assert time.monotonic() - started >= 0.2


async def test_recorded_calls_keep_body_and_x_headers(client: httpx.AsyncClient) -> None:
    key = "[script:recorded]"
    await add_script(client, key, [{"default": True}])
    headers = {
        "x-frontdesk-task-id": "task-1",
        "x-litellm-tags": "tenant:acme",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "authorization": "Bearer secret",
    }
    body = refund_body(start(f"{REFUND_TEXT} {key}"), user="acme")
    await chat(client, body, headers=headers)
    await chat(client, refund_body(start("unrelated ORD-1003")))
    calls = (await client.get("/_demo/calls", params={"key": key})).json()["calls"]
    assert len(calls) == 1
    assert calls[0]["body"] == body
    recorded = calls[0]["headers"]
    assert recorded["x-frontdesk-task-id"] == "task-1" and recorded["x-litellm-tags"] == "tenant:acme"
    assert recorded["traceparent"].startswith("00-0af7")
    assert "authorization" not in recorded

    assert (await client.delete("/_demo/scripts")).status_code == 200
    assert (await client.get("/_demo/calls", params={"key": key})).json()["calls"] == []


async def test_script_matched_by_header(client: httpx.AsyncClient) -> None:
    await add_script(client, "by-header", [{"content": "scripted"}])
    body = {"model": "demo-slm", "messages": [{"role": "user", "content": "hi"}]}
    assert content(await chat(client, body, headers={"x-demo-script": "by-header"})) == "scripted"


async def test_fail_directive_without_script(client: httpx.AsyncClient) -> None:
    body = {"model": "demo-slm", "messages": [{"role": "user", "content": "hi [demo:fail-500]"}]}
    for _ in range(2):
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 500 and "error" in response.json()


# --- streaming and usage ----------------------------------------------------------------------------


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[Any]:
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


async def test_streaming_with_usage(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo-slm",
        "messages": [{"role": "user", "content": MEMO}],
        "response_format": schema_format(Summary),
    }
    plain = await chat(client, body)
    chunks = await stream(client, {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == content(plain)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]

    without_usage = await stream(client, {**body, "stream": True})
    assert all("usage" not in c for c in without_usage)


async def test_streaming_tool_call(client: httpx.AsyncClient) -> None:
    chunks = await stream(client, {**refund_body(start(REFUND_TEXT)), "stream": True})
    deltas = [d for c in chunks for d in c["choices"][0]["delta"].get("tool_calls") or []]
    assert deltas[0]["function"]["name"] == "lookup_order"
    arguments = "".join(d["function"]["arguments"] for d in deltas)
    assert json.loads(arguments) == {"order_id": "ORD-1001"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_same_request_same_answer_and_usage(client: httpx.AsyncClient) -> None:
    body = refund_body(start(REFUND_TEXT))
    first, second = await chat(client, body), await chat(client, body)
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"]
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > usage["completion_tokens"] >= 1
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}


async def test_max_tokens_cuts_text_answers(client: httpx.AsyncClient) -> None:
    body = {"model": "demo-slm", "messages": [{"role": "user", "content": MEMO}], "max_tokens": 3}
    data = await chat(client, body)
    assert data["choices"][0]["finish_reason"] == "length"
    assert len(data["choices"][0]["message"]["content"]) == 12
