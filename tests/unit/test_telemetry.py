"""Telemetry's pieces on their own: off by default and free, the task's invoke_workflow span, the
Prometheus text, who may read /metrics, and what never goes on a span."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import cast

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator import metrics, telemetry
from orchestrator.api.routes import observability
from orchestrator.contracts import ChatMessage, ModelCallInput, RoutingFacts
from orchestrator.settings import Settings
from orchestrator.temporal_client import TaskTraceInterceptor, interceptors
from workers.activities.model_calls import chat_attributes, rung_of, served
from workers.router_client import AttemptRecord, ChatOutcome

TOKEN = "scrape-" + "t" * 20


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    telemetry.shutdown()
    metrics.shutdown()


def test_off_by_default_nothing_is_made() -> None:
    settings = Settings()
    assert not telemetry.configure(settings, "api")
    assert not metrics.configure(settings, "api")
    assert telemetry.tracing_interceptor() is None and interceptors() == []
    with telemetry.span("anything", {"a": 1}) as s:
        assert not s.is_recording()
    with telemetry.task_span("task_1", "chat tier-slm") as (s, traceparent):
        assert not s.is_recording()
        version, trace_id, span_id, flags = traceparent.split("-")
        assert (version, flags) == ("00", "01") and int(trace_id, 16) == telemetry.task_trace_id("task_1")
        assert int(span_id, 16) != 0
    metrics.record_chat(tier="tier-slm", model="m", seconds=1, input_tokens=1, output_tokens=1, cost_usd=1)
    assert metrics.prometheus_text() is None


def test_the_task_root_is_fixed_by_the_api_and_emitted_by_the_worker() -> None:
    exporter = InMemorySpanExporter()
    assert telemetry.configure(Settings(), "api", exporter=exporter)
    tracer = trace.get_tracer("test", tracer_provider=telemetry._state.provider)
    with tracer.start_as_current_span("POST /api/tasks") as request:
        token = otel_context.attach(telemetry.workflow_root("task_9", "refund_request@1"))
        try:
            with telemetry.span("StartWorkflow") as start:  # what Temporal's interceptor does
                carried = start.get_span_context()
        finally:
            otel_context.detach(token)
    # ...in the worker, much later, under a span that inherited the tracestate:
    remote = trace.NonRecordingSpan(carried)
    with trace.use_span(remote):
        telemetry.end_workflow_span("task_9", "completed", "resolved")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["invoke_workflow refund_request@1"]
    assert root.context.span_id == telemetry.workflow_span_id("task_9")
    assert root.context.trace_id == request.get_span_context().trace_id
    assert root.parent is not None and root.parent.span_id == request.get_span_context().span_id
    assert spans["StartWorkflow"].parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert root.start_time is not None and root.end_time is not None and root.start_time <= root.end_time
    assert root.attributes is not None and root.attributes["frontdesk.task.outcome"] == "resolved"
    assert root.status.is_ok


def test_content_is_captured_only_when_switched_on() -> None:
    off, on = InMemorySpanExporter(), InMemorySpanExporter()
    telemetry.configure(Settings(), "worker", exporter=off)
    with telemetry.span("chat tier-slm") as s:
        telemetry.set_content(s, "gen_ai.input.messages", [{"role": "user", "content": "secret plan"}])
    (first,) = off.get_finished_spans()
    telemetry.shutdown()
    telemetry.configure(Settings(otel_capture_content=True), "worker", exporter=on)
    with telemetry.span("chat tier-open") as s:
        telemetry.set_content(s, "gen_ai.input.messages", [{"role": "user", "content": "plan"}])
    (second,) = on.get_finished_spans()
    assert "gen_ai.input.messages" not in (first.attributes or {})
    assert "plan" in str((second.attributes or {})["gen_ai.input.messages"])


def test_the_client_gets_the_task_root_before_temporals_interceptor() -> None:
    telemetry.configure(Settings(), "api", exporter=InMemorySpanExporter())
    chain = interceptors()
    assert isinstance(chain[0], TaskTraceInterceptor)
    assert type(chain[1]).__name__ == "TracingInterceptor"


def test_otlp_headers_are_a_secret() -> None:
    settings = Settings(otel_exporter_otlp_headers="api-key=abc123==, x-team = ops%2Cdev")
    assert telemetry.otlp_headers(settings) == {"api-key": "abc123==", "x-team": "ops,dev"}
    assert "abc123" not in repr(settings)


def test_prometheus_text() -> None:
    assert metrics.configure(Settings(), "api", prometheus=True)
    metrics.record_chat(
        tier="tier-slm", model="demo-slm", seconds=0.3, input_tokens=120, output_tokens=30, cost_usd=0.002
    )
    metrics.record_switch_flip("tenant", "stop", True)
    metrics.record_policy_denial("issue_refund", 'say "no"\nnow')
    text = metrics.prometheus_text()
    assert text is not None
    assert "# TYPE gen_ai_client_token_usage_tokens histogram" in text
    labels = 'gen_ai_operation_name="chat",gen_ai_provider_name="_OTHER",gen_ai_request_model="tier-slm",'
    labels += 'gen_ai_response_model="demo-slm",gen_ai_token_type="input"'
    assert f'gen_ai_client_token_usage_tokens_bucket{{{labels},le="256.0"}} 1' in text
    assert f'gen_ai_client_token_usage_tokens_bucket{{{labels},le="+Inf"}} 1' in text
    assert f"gen_ai_client_token_usage_tokens_sum{{{labels}}} 120" in text
    assert "# TYPE gen_ai_client_operation_duration_seconds histogram" in text
    assert "# TYPE frontdesk_switch_flips_total counter" in text
    assert 'frontdesk_switch_flips_total{frontdesk_switch_active="true",frontdesk_switch_mode="stop"' in text
    assert 'frontdesk_policy_rule="say \\"no\\"\\nnow"' in text  # label values escaped
    assert "frontdesk_model_calls_cost_usd_total" in text


async def _get(settings: Settings, headers: dict[str, str] | None = None) -> httpx.Response:
    app = FastAPI()
    app.include_router(observability.router(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get("/metrics", headers=headers or {})


async def test_metrics_endpoint_is_off_unless_a_setting_opens_it() -> None:
    metrics.configure(Settings(), "api", prometheus=True)  # another app in the process turned them on
    assert (await _get(Settings())).status_code == 404
    assert (await _get(Settings(), {"Authorization": "Bearer "})).status_code == 404


async def test_metrics_endpoint_wants_the_token() -> None:
    settings = Settings(metrics_token=TOKEN)
    metrics.configure(settings, "api", prometheus=True)
    assert (await _get(settings)).status_code == 401
    assert (await _get(settings, {"Authorization": "Bearer wrong"})).status_code == 401
    ok = await _get(settings, {"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert TOKEN not in ok.text
    public = Settings(metrics_public=True)
    assert (await _get(public)).status_code == 200


def test_production_refuses_a_weak_metrics_token() -> None:
    with pytest.raises(ValueError, match="FRONTDESK_METRICS_TOKEN"):
        Settings(environment="production", router_api_key="r" * 32, metrics_token="short")


async def test_api_request_spans_continue_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    telemetry.configure(Settings(), "api", exporter=exporter)
    app = FastAPI()

    @app.get("/api/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        return {"traceparent": telemetry.traceparent(trace.get_current_span())}

    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    wrapped = telemetry.RequestSpans(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as client:
        r = await client.get(
            "/api/things/7?secret=x", headers={"traceparent": caller, "authorization": "Bearer t0k"}
        )
        await client.get("/healthz")
        await client.get("/static/app.css")
    (span,) = exporter.get_finished_spans()  # probes and static files start no trace
    assert span.name == "GET /api/things/{thing_id}" and span.kind == trace.SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert r.json()["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"
    attributes = dict(span.attributes or {})
    assert (
        attributes["http.response.status_code"] == 200
        and attributes["http.route"] == "/api/things/{thing_id}"
    )
    assert "t0k" not in str(attributes) and "secret" not in str(attributes)


def test_the_worker_adds_temporals_interceptor_once() -> None:
    from temporalio.client import Client

    from workers.worker import tracing

    class FakeClient:
        def __init__(self, interceptors: list[object]) -> None:
            self._config = {"interceptors": interceptors}

        def config(self) -> dict[str, object]:
            return self._config

    assert tracing(cast(Client, FakeClient([]))) == []  # tracing off: nothing
    telemetry.configure(Settings(), "worker", exporter=InMemorySpanExporter())
    (added,) = tracing(cast(Client, FakeClient([])))
    assert type(added).__name__ == "TracingInterceptor"
    assert tracing(cast(Client, FakeClient(interceptors()))) == []  # inherited from the client


def _call(request_id: str) -> ModelCallInput:
    facts = RoutingFacts(
        tenant_id="acme", requester_id="u1", task_id="task_1", step="handle", agent="refund_agent",
        category="refund", risk_class="low", data_classification="internal",
    )  # fmt: skip
    return ModelCallInput(
        facts=facts, turn=2, request_id=request_id, tier="tier-open",
        messages=[ChatMessage(role="user", content="the customer's words")],
    )  # fmt: skip


def test_a_chat_span_says_what_was_asked_and_served() -> None:
    exporter = InMemorySpanExporter()
    telemetry.configure(Settings(), "worker", exporter=exporter)
    metrics.configure(Settings(), "worker", prometheus=True)
    call = _call("task_1/handle/r2/2")
    assert rung_of(call) == 2 and rung_of(_call("task_1/handle/2")) == 1 and rung_of(_call("plan-7")) == 1
    attempt = AttemptRecord(
        attempt=1, latency_ms=12, ok=True, model_served="demo-open", model_group="tier-open",
        prompt_tokens=50, completion_tokens=7, cached_tokens=5, cost_usd=Decimal("0.0012"),
    )  # fmt: skip
    outcome = ChatOutcome(
        message=ChatMessage(role="assistant", content="refund it"), attempts=[attempt],
        model_served="demo-open", finish_reason="stop",
    )  # fmt: skip
    with telemetry.task_span("task_1", "chat tier-open", **chat_attributes(call)) as (span, _):
        served(span, call, outcome, Decimal("0.0012"), 0.25)
    (chat,) = exporter.get_finished_spans()
    a = dict(chat.attributes or {})
    assert a["gen_ai.request.model"] == "tier-open" and a["gen_ai.response.model"] == "demo-open"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (50, 7)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 5 and a["frontdesk.rung"] == 2
    assert a["frontdesk.cost_usd"] == pytest.approx(0.0012) and a["gen_ai.response.finish_reasons"] == (
        "stop",
    )
    assert "the customer's words" not in str(a) and "refund it" not in str(a)  # content capture is off
    text = metrics.prometheus_text() or ""
    assert 'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat"' in text
    output_sum = [
        line for line in text.splitlines() if line.startswith("gen_ai_client_token_usage_tokens_sum")
    ]
    assert any('gen_ai_token_type="output"' in line and line.endswith(" 7") for line in output_sum)
