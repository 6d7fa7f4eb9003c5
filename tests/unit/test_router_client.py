"""RouterClient against a scripted router (httpx.MockTransport): wire shape, retries, cost."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from repo_paths import SHIPPED_POLICIES

from orchestrator.budgets.pricing import PriceTable
from orchestrator.contracts import ChatMessage, ModelCallInput, RoutingFacts, ToolSpec
from workers.router_client import (
    RouterClient,
    RouterError,
    RouterProtocolError,
    RouterRejected,
    RouterUnavailable,
)

PRICES_PATH = SHIPPED_POLICIES / "prices.yaml"
API_KEY = "sk-test-secret-key-123"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_call(**overrides) -> ModelCallInput:
    fields = {
        "facts": RoutingFacts(
            tenant_id="acme",
            requester_id="u-1",
            task_id="t-42",
            step="triage",
            agent="triager",
            category="billing",
            risk_class="medium",
            data_classification="internal",
        ),
        "turn": 1,
        "request_id": "req-abc",
        "tier": "tier-frontier",
        "messages": [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="hi")],
    }
    fields.update(overrides)
    return ModelCallInput(**fields)


def completion(
    content: str | None = "hello",
    *,
    model: str = "demo-frontier",
    usage: dict | None = None,
    tool_calls: list | None = None,
    finish: str = "stop",
) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


class Router:
    """Answers requests from a script, one entry per request, and keeps what it received."""

    def __init__(self, *script: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load(PRICES_PATH)


@pytest.fixture
async def client_for(prices):
    clients: list[RouterClient] = []

    def make(router: Router, **kwargs) -> RouterClient:
        kwargs.setdefault("backoff_seconds", 0)
        c = RouterClient(
            "http://router.test/", API_KEY, prices=prices, transport=httpx.MockTransport(router), **kwargs
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


def ok(body: dict, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def err(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "x"}}, headers=headers)


# --- request shape ---------------------------------------------------------------------------------


async def test_request_body_and_headers_shape(client_for):
    router = Router(err(503, "warming up"), ok(completion()))
    tool = ToolSpec(
        name="lookup_order",
        version="1",
        description="Find an order",
        side_effect="read",
        args_schema={"type": "object", "properties": {"id": {"type": "string"}}},
    )
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    call = make_call(tools=[tool], output_schema=schema, max_tokens=256)

    await client_for(router).chat(call, traceparent=TRACEPARENT)

    assert len(router.requests) == 2
    first, second = router.requests
    assert str(first.url) == "http://router.test/v1/chat/completions"
    assert first.method == "POST"
    body = router.bodies()[0]
    assert body["model"] == "tier-frontier"
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 256
    assert body["user"] == "acme"
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order",
                "parameters": tool.args_schema,
            },
        }
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    tags = [
        "tenant:acme",
        "task:t-42",
        "step:triage",
        "agent:triager",
        "category:billing",
        "risk:medium",
        "data:internal",
    ]
    assert body["metadata"] == {**call.facts.model_dump(), "request_id": "req-abc", "tags": tags}
    assert router.bodies()[1] == body  # retries resend the identical body

    for n, req in enumerate(router.requests, start=1):
        assert req.headers["authorization"] == f"Bearer {API_KEY}"
        assert req.headers["x-litellm-tags"] == ",".join(tags)
        assert req.headers["x-request-id"] == "req-abc"
        assert req.headers["x-frontdesk-request-id"] == "req-abc"
        assert req.headers["x-frontdesk-task-id"] == "t-42"
        assert req.headers["x-frontdesk-tenant"] == "acme"
        assert req.headers["x-frontdesk-step"] == "triage"
        assert req.headers["x-frontdesk-agent"] == "triager"
        assert req.headers["x-frontdesk-attempt"] == str(n)
        assert req.headers["traceparent"] == TRACEPARENT
    assert second.headers["x-request-id"] == first.headers["x-request-id"]


async def test_optional_fields_are_omitted(client_for):
    router = Router(ok(completion()))
    await client_for(router).chat(make_call())
    body = router.bodies()[0]
    assert "tools" not in body
    assert "response_format" not in body
    assert "traceparent" not in router.requests[0].headers


async def test_non_ascii_facts_do_not_break_headers(client_for):
    facts = make_call().facts.model_copy(update={"step": "prüfung\r\nx", "category": "a,b"})
    router = Router(ok(completion()))
    await client_for(router).chat(make_call(facts=facts))
    headers = router.requests[0].headers
    assert headers["x-frontdesk-step"] == "pr%C3%BCfung%0D%0Ax"
    assert headers["x-litellm-tags"].split(",")[4] == "category:a%2Cb"  # a comma in a value can't split a tag
    assert router.bodies()[0]["metadata"]["step"] == "prüfung\r\nx"  # the body keeps the real value


# --- response parsing --------------------------------------------------------------------------------


async def test_tool_calls_are_parsed(client_for):
    tool_calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": '{"id": "A1"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "refund", "arguments": {"amount": 5}}},
    ]
    router = Router(ok(completion(None, tool_calls=tool_calls, finish="tool_calls")))
    outcome = await client_for(router).chat(make_call())
    msg = outcome.message
    assert msg.role == "assistant"
    assert msg.content is None
    assert [(c.id, c.name, c.arguments) for c in msg.tool_calls] == [
        ("call_1", "lookup_order", '{"id": "A1"}'),
        ("call_2", "refund", '{"amount": 5}'),
    ]
    assert outcome.finish_reason == "tool_calls"
    assert outcome.model_served == "demo-frontier"


async def test_unreadable_200_is_a_protocol_error_and_not_retried(client_for):
    router = Router(
        httpx.Response(200, text="<html>proxy</html>", headers={"x-litellm-response-cost": "0.01"})
    )
    with pytest.raises(RouterProtocolError) as info:
        await client_for(router).chat(make_call())
    assert len(router.requests) == 1
    assert "unreadable" in str(info.value)
    assert [(a.http_status, a.ok, a.cost_usd) for a in info.value.attempts] == [(200, False, Decimal("0.01"))]


# --- cost --------------------------------------------------------------------------------------------


async def test_cost_from_router_header(client_for):
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 40}}
    router = Router(
        ok(
            completion(model="demo-slm", usage=usage),
            **{
                "x-litellm-response-cost": "0.00123",
                "x-litellm-model-group": "tier-slm",
                "x-litellm-attempted-fallbacks": "1",
            },
        )
    )
    outcome = await client_for(router).chat(make_call())
    (a,) = outcome.attempts
    assert a.cost_usd == Decimal("0.00123")
    assert a.cost_estimated is False
    assert (a.prompt_tokens, a.completion_tokens, a.cached_tokens) == (100, 20, 40)
    assert (a.model_served, a.model_group, a.fallbacks) == ("demo-slm", "tier-slm", 1)
    assert (a.attempt, a.http_status, a.ok, a.error) == (1, 200, True, None)
    assert a.latency_ms >= 0
    assert outcome.model_served == "demo-slm"
    assert outcome.cost_usd == Decimal("0.00123")


async def test_cost_estimated_from_price_table_by_served_model(client_for, prices):
    usage = {"prompt_tokens": 1000, "completion_tokens": 200, "prompt_tokens_details": {"cached_tokens": 400}}
    # Requested the frontier tier but a fallback served the small model: price what was served.
    router = Router(ok(completion(model="demo-slm", usage=usage)))
    outcome = await client_for(router).chat(make_call(tier="tier-frontier"))
    (a,) = outcome.attempts
    expected = (
        Decimal(600) * Decimal("0.0000001")
        + Decimal(400) * Decimal("0.00000001")
        + Decimal(200) * Decimal("0.0000004")
    )
    assert a.cost_usd == expected == prices.price("demo-slm", "tier-frontier", 1000, 200, 400)
    assert a.cost_estimated is True
    assert outcome.cost_usd == expected


async def test_no_usage_and_no_header_costs_zero_not_estimated(client_for):
    router = Router(ok(completion()))
    (a,) = (await client_for(router).chat(make_call())).attempts
    assert a.cost_usd == Decimal(0)
    assert a.cost_estimated is False


def test_price_table_lookup_order(prices, tmp_path):
    assert prices.price("openai/demo-open", "tier-frontier", 10, 0) == Decimal(10) * Decimal("0.0000006")
    assert prices.price("unknown-upstream", "tier-slm", 10, 0) == Decimal(10) * Decimal("0.0000001")
    assert prices.price(None, "tier-custom", 0, 10) == Decimal(10) * Decimal("0.000025")  # default
    bad = tmp_path / "prices.yaml"
    bad.write_text("models: {x: {input: 1, output: 1}}\n")
    with pytest.raises(ValueError, match="default"):
        PriceTable.load(bad)


# --- retries -----------------------------------------------------------------------------------------


async def test_500_then_200_records_both_attempts_and_sums_cost(client_for):
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    router = Router(
        err(500, "upstream exploded", **{"x-litellm-response-cost": "0.002"}),
        ok(completion("fine", usage=usage), **{"x-litellm-response-cost": "0.003"}),
    )
    outcome = await client_for(router).chat(make_call())
    assert len(router.requests) == 2
    assert outcome.message.content == "fine"
    first, second = outcome.attempts
    assert (first.attempt, first.http_status, first.ok, first.error) == (1, 500, False, "upstream exploded")
    assert first.cost_usd == Decimal("0.002")
    assert (second.attempt, second.http_status, second.ok) == (2, 200, True)
    assert outcome.cost_usd == Decimal("0.005")


async def test_three_500s_raise_unavailable_with_router_message(client_for):
    router = Router(err(500, "upstream exploded"))
    with pytest.raises(RouterUnavailable) as info:
        await client_for(router).chat(make_call())
    assert len(router.requests) == 3
    assert str(info.value) == "router failed after 3 requests: last error HTTP 500: upstream exploded"
    assert [(a.attempt, a.http_status, a.ok) for a in info.value.attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 500, False),
    ]
    assert [r.headers["x-frontdesk-attempt"] for r in router.requests] == ["1", "2", "3"]
    assert isinstance(info.value, RouterError)


async def test_429_is_retried(client_for):
    router = Router(err(429, "slow down"), ok(completion()))
    outcome = await client_for(router).chat(make_call())
    assert [a.http_status for a in outcome.attempts] == [429, 200]


async def test_400_is_not_retried_and_keeps_message(client_for):
    router = Router(err(400, "tier-bogus is not a model group", **{"x-litellm-response-cost": "0"}))
    with pytest.raises(RouterRejected) as info:
        await client_for(router).chat(make_call(tier="tier-bogus"))
    assert len(router.requests) == 1
    assert str(info.value) == "router refused the call (HTTP 400): tier-bogus is not a model group"
    assert info.value.status_code == 400
    assert [(a.http_status, a.ok, a.error) for a in info.value.attempts] == [
        (400, False, "tier-bogus is not a model group")
    ]


async def test_4xx_with_plain_text_body_keeps_text(client_for):
    router = Router(httpx.Response(401, text="Authentication Error, bad key"))
    with pytest.raises(RouterRejected, match=r"\(HTTP 401\): Authentication Error, bad key$"):
        await client_for(router).chat(make_call())
    assert len(router.requests) == 1


async def test_timeout_is_retried(client_for):
    router = Router(
        httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused"), ok(completion("late"))
    )
    outcome = await client_for(router).chat(make_call())
    assert outcome.message.content == "late"
    assert len(router.requests) == 3
    # The refused connection never reached the router: no attempt record, no request counted.
    assert [(a.attempt, a.http_status, a.ok) for a in outcome.attempts] == [(1, None, False), (3, 200, True)]
    assert outcome.attempts[0].error.startswith("timeout")


async def test_connection_error_without_message_names_the_exception(client_for):
    router = Router(httpx.ConnectError(""))
    with pytest.raises(RouterUnavailable, match=r"last error connection error: ConnectError$"):
        await client_for(router, max_requests=2, outage_max_seconds=0).chat(make_call())
    assert len(router.requests) == 1


async def test_timeouts_exhaust_retries(client_for):
    router = Router(httpx.ReadTimeout("read timed out"))
    with pytest.raises(RouterUnavailable, match="after 3 requests: last error timeout: read timed out"):
        await client_for(router).chat(make_call())
    assert len(router.requests) == 3


async def test_max_requests_one_is_honoured(client_for):
    router = Router(err(502, "bad gateway"), ok(completion()))
    with pytest.raises(RouterUnavailable) as info:
        await client_for(router, max_requests=1).chat(make_call())
    assert len(router.requests) == 1
    assert "after 1 requests: last error HTTP 502: bad gateway" in str(info.value)
    assert len(info.value.attempts) == 1


async def test_backoff_doubles(client_for, monkeypatch):
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr("workers.router_client.asyncio.sleep", fake_sleep)
    router = Router(err(500, "x"))
    with pytest.raises(RouterUnavailable):
        await client_for(router, max_requests=4, backoff_seconds=0.5).chat(make_call())
    assert delays == [0.5, 1.0, 2.0]


async def test_api_key_never_logged(client_for, caplog):
    caplog.set_level(logging.DEBUG)
    router = Router(err(500, "x"), httpx.ConnectError("refused"), err(503, "y"), err(500, "z"))
    client = client_for(router)
    with pytest.raises(RouterUnavailable):
        await client.chat(make_call())
    assert caplog.records, "retries should be logged"
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client)


async def test_context_manager_closes_client(prices):
    router = Router(ok(completion()))
    async with RouterClient(
        "http://router.test", API_KEY, prices=prices, transport=httpx.MockTransport(router)
    ) as client:
        await client.chat(make_call())
    assert client._http.is_closed


# --- outages: what is waited out, what counts --------------------------------------------------------


class Ledger:
    """A CallLedger that keeps what it heard, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    async def sending(self, attempt: int) -> None:
        self.events.append(("sending", attempt))

    async def not_sent(self, attempt: int) -> None:
        self.events.append(("not_sent", attempt))

    async def ended(self, record, answer: str | None = None) -> None:
        self.events.append(("ended", record.attempt, record.http_status, answer is not None))

    async def waiting(self, note: str | None) -> None:
        self.events.append(("waiting", note))


@pytest.fixture
def no_sleep(monkeypatch):
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr("workers.router_client.asyncio.sleep", fake_sleep)
    return delays


@pytest.mark.parametrize(
    "not_sent",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("connect timed out"), httpx.PoolTimeout("pool")],
)
async def test_unsent_requests_are_waited_out_and_not_counted(client_for, no_sleep, not_sent):
    # Far more refusals than max_requests: a router restart (6-9 s) is ridden out.
    router = Router(*[not_sent] * 12, ok(completion("back")))
    ledger = Ledger()
    outcome = await client_for(router, backoff_seconds=0.5).chat(make_call(), ledger=ledger)
    assert outcome.message.content == "back"
    assert len(router.requests) == 13
    assert [(a.attempt, a.ok) for a in outcome.attempts] == [(13, True)]
    assert no_sleep[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0] and max(no_sleep) == 15.0
    assert ledger.events.count(("not_sent", 1)) == 1
    assert sum(1 for e in ledger.events if e[0] == "not_sent") == 12
    notes = [e[1] for e in ledger.events if e[0] == "waiting"]
    assert notes[0].startswith("waiting for the router since ") and "(attempt 1)" in notes[0]
    assert "(attempt 12)" in notes[-2] and notes[-1] is None  # cleared once the router answers
    assert ledger.events[-3:] == [("sending", 13), ("waiting", None), ("ended", 13, 200, True)]


async def test_sent_requests_count_against_max_requests(client_for, no_sleep):
    # A read timeout or a 5xx may have reached a provider: each counts; refusals in between do not.
    router = Router(
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        err(502, "bad gateway"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("server disconnected"),
        ok(completion()),
    )
    with pytest.raises(
        RouterUnavailable, match=r"^router failed after 3 requests: last error connection error"
    ) as info:
        await client_for(router).chat(make_call())
    assert len(router.requests) == 5
    assert [(a.attempt, a.http_status) for a in info.value.attempts] == [(1, None), (3, 502), (5, None)]


async def test_counted_attempts_are_recorded(client_for, no_sleep):
    router = Router(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), err(504, "gw"), err(503, "x"))
    ledger = Ledger()
    with pytest.raises(RouterUnavailable) as info:
        await client_for(router).chat(make_call(), ledger=ledger)
    assert [(a.attempt, a.http_status) for a in info.value.attempts] == [(1, None), (3, 504), (4, 503)]
    assert [e for e in ledger.events if e[0] in ("sending", "not_sent", "ended")] == [
        ("sending", 1), ("ended", 1, None, False),
        ("sending", 2), ("not_sent", 2),
        ("sending", 3), ("ended", 3, 504, False),
        ("sending", 4), ("ended", 4, 503, False),
    ]  # fmt: skip
    assert ledger.events[-1] == ("waiting", None)


async def test_429_is_waited_out_without_counting(client_for, no_sleep):
    router = Router(*[err(429, "slow down")] * 5, ok(completion()))
    outcome = await client_for(router).chat(make_call())
    assert [a.http_status for a in outcome.attempts] == [429] * 5 + [200]


async def test_outage_limit_ends_the_wait(client_for, monkeypatch):
    clock = [1000.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    monkeypatch.setattr("workers.router_client.asyncio.sleep", fake_sleep)
    monkeypatch.setattr("workers.router_client.time.monotonic", lambda: clock[0])
    router = Router(httpx.ConnectError("refused"))
    with pytest.raises(
        RouterUnavailable, match=r"^router unreachable for 600 s \(\d+ tries, 0 requests counted\)"
    ):
        await client_for(router, backoff_seconds=0.5, outage_max_seconds=600).chat(make_call())
    assert 40 < len(router.requests) < 50  # 0.5 s doubling to 15 s apart, for 600 s
    assert clock[0] == 1600.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_4xx_fails_at_once_even_during_an_outage(client_for, no_sleep, status):
    router = Router(httpx.ConnectError("refused"), err(status, "no"))
    ledger = Ledger()
    with pytest.raises(RouterRejected):
        await client_for(router).chat(make_call(), ledger=ledger)
    assert len(router.requests) == 2
    assert ledger.events[-1] == ("waiting", None)
