"""The one place Frontdesk talks to models: an async client for the OpenAI-compatible router.

One ``chat()`` call is one logical model call. Failures are classified by whether the request
may have reached a provider (and so may have cost money):

- never sent (connection refused, connect or pool timeout): not counted, not recorded;
- answered 429 (rate limited, nothing served): recorded, not counted;
- may have reached a provider (5xx, a timeout or a dropped connection after the request was
  sent): recorded and counted against ``max_requests``.

All of them are transient: the client waits with capped exponential backoff and tries again,
for up to ``outage_max_seconds`` since the first failure (a router restart takes 6-9 s; an
outage is waited out for minutes) and until ``max_requests`` counted requests were made. 4xx
other than 429 fail at once. The request id is the same on every request so the router and
upstream can deduplicate. An optional ``CallLedger`` hears of every request before it is sent
and after it ended, so the caller can write it down before any money can be spent.

Errors::

    RouterError                 every failure; ``.attempts`` holds all attempt records
    ├── RouterRejected          4xx other than 429; not retried, the router's message is kept
    ├── RouterUnavailable       transient failures past ``max_requests`` or ``outage_max_seconds``
    └── RouterProtocolError     HTTP 200 but the body is not a chat completion
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from orchestrator.budgets.pricing import PriceTable
from orchestrator.contracts import ChatMessage, ModelCallInput, ToolCallRequest

logger = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 500
# Printable ASCII except the comma (the tag separator) stays as is; anything else is
# percent-encoded so a non-ASCII or multi-line fact can never make a header invalid.
_HEADER_SAFE = " !\"#$%&'()*+-./:;<=>?@[\\]^_`{|}~"
_TAG_KEYS = ("tenant", "task", "step", "agent", "category", "risk", "data")


class AttemptRecord(BaseModel):
    attempt: int
    http_status: int | None = None
    latency_ms: float
    ok: bool
    error: str | None = None
    model_served: str | None = None
    model_group: str | None = None
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    cost_estimated: bool = False


class ChatOutcome(BaseModel):
    message: ChatMessage
    attempts: list[AttemptRecord]
    model_served: str
    finish_reason: str | None = None

    @property
    def cost_usd(self) -> Decimal:
        return sum((a.cost_usd for a in self.attempts), Decimal(0))


class RouterError(Exception):
    def __init__(self, message: str, attempts: list[AttemptRecord]) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = list(attempts)

    @property
    def cost_usd(self) -> Decimal:
        return sum((a.cost_usd for a in self.attempts), Decimal(0))


class RouterRejected(RouterError):
    def __init__(self, status_code: int, detail: str, attempts: list[AttemptRecord]) -> None:
        super().__init__(f"router refused the call (HTTP {status_code}): {detail}", attempts)
        self.status_code = status_code
        self.detail = detail


class RouterUnavailable(RouterError):
    pass


class RouterProtocolError(RouterError):
    pass


class CallLedger(Protocol):
    """Where a caller writes requests down (see `workers.activities.model_ledger`)."""

    async def sending(self, attempt: int) -> None:
        """Before request `attempt` leaves: from here on it may cost money."""

    async def not_sent(self, attempt: int) -> None:
        """Request `attempt` never reached the router (no connection): forget it."""

    async def ended(self, record: AttemptRecord, answer: str | None = None) -> None:
        """Request `record.attempt` ended with this outcome (`answer`: the message, as JSON)."""

    async def waiting(self, note: str | None) -> None:
        """The router is unreachable (`note` says since when), or reachable again (None)."""


# Connection never made: the request cannot have reached the router, let alone a provider.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
MAX_BACKOFF_SECONDS = 15.0


class _BadBody(Exception):
    """A 200 response whose body is not a usable chat completion."""


def _header_value(value: str) -> str:
    return quote(value, safe=_HEADER_SAFE)


def _tags(call: ModelCallInput) -> list[str]:
    f = call.facts
    values = (f.tenant_id, f.task_id, f.step, f.agent, f.category, f.risk_class, f.data_classification)
    return [f"{key}:{value}" for key, value in zip(_TAG_KEYS, values, strict=True)]


def build_body(call: ModelCallInput) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": call.tier,
        "messages": [m.to_openai() for m in call.messages],
        "max_tokens": call.max_tokens,
        "user": call.facts.tenant_id,
        "metadata": {**call.facts.model_dump(), "request_id": call.request_id, "tags": _tags(call)},
    }
    if call.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.args_schema},
            }
            for t in call.tools
        ]
    if call.output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": call.output_schema},
        }
    return body


def build_headers(call: ModelCallInput, attempt: int, traceparent: str | None) -> dict[str, str]:
    f = call.facts
    headers = {
        "x-request-id": call.request_id,
        "x-frontdesk-request-id": call.request_id,
        "x-frontdesk-task-id": f.task_id,
        "x-frontdesk-tenant": f.tenant_id,
        "x-frontdesk-step": f.step,
        "x-frontdesk-agent": f.agent,
        "x-frontdesk-attempt": str(attempt),
    }
    if traceparent:
        headers["traceparent"] = traceparent
    encoded = {k: _header_value(v) for k, v in headers.items()}
    # Each tag is encoded on its own (a comma inside a value becomes %2C) so only separators split.
    encoded["x-litellm-tags"] = ",".join(_header_value(t) for t in _tags(call))
    return encoded


def _error_detail(response: httpx.Response) -> str:
    text = response.text
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
        elif isinstance(err, str) and err:
            text = err
        elif isinstance(data.get("detail"), str):
            text = data["detail"]
    text = text.strip() or response.reason_phrase or "no error message"
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "..."


def _reported_cost(response: httpx.Response) -> Decimal | None:
    raw = response.headers.get("x-litellm-response-cost")
    if raw is None:
        return None
    try:
        cost = Decimal(raw.strip())
    except InvalidOperation:
        logger.warning("ignoring unreadable x-litellm-response-cost header %r", raw)
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _parse_message(data: Any) -> tuple[ChatMessage, str | None]:
    if not isinstance(data, dict):
        raise _BadBody("the body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _BadBody("the body has no choices")
    raw = choices[0].get("message")
    if not isinstance(raw, dict):
        raise _BadBody("the first choice has no message")
    content = raw.get("content")
    if isinstance(content, list):  # content parts; only text parts mean anything to us
        content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict)) or None
    elif content is not None and not isinstance(content, str):
        raise _BadBody("the message content is not text")
    raw_calls = raw.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise _BadBody("tool_calls is not a list")
    calls: list[ToolCallRequest] = []
    for tc in raw_calls:
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not tc.get("id") or not fn.get("name"):
            raise _BadBody("a tool call lacks its id or function name")
        args = fn.get("arguments")
        # Some servers send arguments as an object; the domain keeps the model's JSON text.
        args_text = args if isinstance(args, str) else json.dumps(args if args is not None else {})
        calls.append(ToolCallRequest(id=str(tc["id"]), name=str(fn["name"]), arguments=args_text))
    finish = choices[0].get("finish_reason")
    return ChatMessage(role="assistant", content=content, tool_calls=calls), finish


class RouterClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        prices: PriceTable,
        max_requests: int = 3,
        timeout_seconds: float = 60,
        backoff_seconds: float = 0.5,
        outage_max_seconds: float = 600,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.prices = prices
        self.max_requests = max_requests
        self.timeout_seconds = timeout_seconds
        self.backoff_seconds = backoff_seconds
        self.outage_max_seconds = outage_max_seconds
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
        )

    def __repr__(self) -> str:  # the key lives only inside the httpx client's headers
        return f"RouterClient(base_url={self.base_url!r}, max_requests={self.max_requests})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RouterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def chat(
        self, call: ModelCallInput, *, traceparent: str | None = None, ledger: CallLedger | None = None
    ) -> ChatOutcome:
        body = build_body(call)
        attempts: list[AttemptRecord] = []
        counted = 0  # requests that may have reached a provider
        failed_since: float | None = None  # monotonic time of the first failure of this call
        failed_wall = ""
        n = 0
        while True:
            n += 1
            if ledger is not None:
                await ledger.sending(n)
            started = time.perf_counter()
            try:
                response = await self._http.post(
                    "/v1/chat/completions", json=body, headers=build_headers(call, n, traceparent)
                )
            except httpx.TransportError as exc:
                kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection error"
                error = f"{kind}: {str(exc) or type(exc).__name__}"
                if isinstance(exc, _NOT_SENT):
                    if ledger is not None:
                        await ledger.not_sent(n)
                else:
                    counted += 1
                    record = AttemptRecord(attempt=n, latency_ms=_ms(started), ok=False, error=error)
                    attempts.append(record)
                    if ledger is not None:
                        await ledger.ended(record)
            else:
                common = {
                    "attempt": n,
                    "http_status": response.status_code,
                    "latency_ms": _ms(started),
                    "model_group": response.headers.get("x-litellm-model-group"),
                    "fallbacks": _int(response.headers.get("x-litellm-attempted-fallbacks")),
                }
                if response.is_success:
                    if ledger is not None and failed_since is not None:
                        await ledger.waiting(None)
                    return await self._success(call, response, common, attempts, ledger)
                status, detail = response.status_code, _error_detail(response)
                cost = _reported_cost(response) or Decimal(0)
                record = AttemptRecord(**common, ok=False, error=detail, cost_usd=cost)
                attempts.append(record)
                if ledger is not None:
                    await ledger.ended(record)
                if status != 429 and status < 500:
                    if ledger is not None and failed_since is not None:
                        await ledger.waiting(None)
                    raise RouterRejected(status, detail, attempts)
                counted += status != 429  # a 429 served nothing: it costs no request
                error = f"HTTP {status}: {detail}"
            now = time.monotonic()
            if failed_since is None:
                failed_since, failed_wall = now, time.strftime("%H:%M:%S UTC", time.gmtime())
            waited = now - failed_since
            logger.warning(
                "router call %s request %d (%d of %d counted, %.0f s failing): %s",
                call.request_id, n, counted, self.max_requests, waited, error,
            )  # fmt: skip
            if counted >= self.max_requests or waited >= self.outage_max_seconds:
                if ledger is not None:
                    await ledger.waiting(None)
                why = (
                    f"router failed after {counted} requests"
                    if counted >= self.max_requests
                    else f"router unreachable for {waited:.0f} s ({n} tries, {counted} requests counted)"
                )
                raise RouterUnavailable(f"{why}: last error {error}", attempts)
            if ledger is not None:
                await ledger.waiting(f"waiting for the router since {failed_wall} (attempt {n}): {error}")
            delay = min(self.backoff_seconds * 2 ** (n - 1), MAX_BACKOFF_SECONDS)
            await asyncio.sleep(min(delay, max(self.outage_max_seconds - waited, 0)))

    async def _success(
        self,
        call: ModelCallInput,
        response: httpx.Response,
        common: dict[str, Any],
        attempts: list[AttemptRecord],
        ledger: CallLedger | None,
    ) -> ChatOutcome:
        try:
            data = response.json()
        except ValueError:
            data = None
        top = data if isinstance(data, dict) else {}
        served = str(top["model"]) if top.get("model") else None
        usage = top.get("usage") if isinstance(top.get("usage"), dict) else None
        u = usage or {}
        details = u.get("prompt_tokens_details")
        tokens = {
            "prompt_tokens": _int(u.get("prompt_tokens")),
            "completion_tokens": _int(u.get("completion_tokens")),
            "cached_tokens": _int(details.get("cached_tokens")) if isinstance(details, dict) else 0,
        }
        cost, estimated = _reported_cost(response), False
        if cost is None and usage is not None:
            cost, estimated = self.prices.price(served, call.tier, **tokens), True
        record = {**common, **tokens, "model_served": served, "cost_usd": cost or Decimal(0)}
        try:
            message, finish = _parse_message(data)
        except _BadBody as exc:
            # Not retried: the router answered and may have charged; a new call could charge again.
            attempts.append(AttemptRecord(**record, cost_estimated=estimated, ok=False, error=str(exc)))
            if ledger is not None:
                await ledger.ended(attempts[-1])
            raise RouterProtocolError(
                f"router returned an unreadable chat completion (HTTP {response.status_code}): {exc}",
                attempts,
            ) from None
        attempts.append(AttemptRecord(**record, cost_estimated=estimated, ok=True))
        if ledger is not None:
            await ledger.ended(attempts[-1], answer=message.model_dump_json())
        return ChatOutcome(
            message=message,
            attempts=attempts,
            model_served=served or common["model_group"] or call.tier,
            finish_reason=str(finish) if finish is not None else None,
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
