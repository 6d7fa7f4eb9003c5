"""Tracing: one trace per task, from the API request through the workflow and its activities to
the router (W3C `traceparent`), named after the OpenTelemetry GenAI semantic conventions.

Off by default, and then nearly free: no provider, no exporter, no interceptor; `span()` hands out
one shared non-recording span. `configure()` switches it on (OTLP/HTTP export, console spans) once
per process; docs/observability.md lists every span and attribute.

The task's `invoke_workflow` span lasts as long as the task, longer than any one process: the API
fixes its span id (derived from the task id) and parents the workflow's spans to it, carrying its
own parent and start in the W3C `tracestate` (`frontdesk=<parent span>-<start ns>-<workflow>`),
which every child span inherits; the activity that records the task's end emits the span with
that id (`end_workflow_span`). Workflow code itself never touches OpenTelemetry: Temporal's
TracingInterceptor makes its spans, only when not replaying.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from orchestrator.settings import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "frontdesk"
STATE_KEY = "frontdesk"  # our entry in the W3C tracestate
_propagator = TraceContextTextMapPropagator()
_NOOP_SPAN = NonRecordingSpan(SpanContext(0, 0, False))
# (trace id, span id) of a span whose ids were fixed in advance (the task's invoke_workflow)
_forced_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "frontdesk_forced_ids", default=None
)


class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None
    capture_content = False


_state = _State()


class _IdGenerator(RandomIdGenerator):
    """Random ids, except where a span's id is fixed in advance (the task's `invoke_workflow`)."""

    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced else super().generate_trace_id()


def otlp_headers(settings: Settings) -> dict[str, str]:
    """FRONTDESK_OTEL_EXPORTER_OTLP_HEADERS (`key=value,key=value`, values percent-encoded as in
    OTEL_EXPORTER_OTLP_HEADERS) as a dict."""
    raw = settings.otel_exporter_otlp_headers.get_secret_value()
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {k.strip(): unquote(v.strip()) for k, v in pairs}


def resource(settings: Settings, role: str) -> Resource:
    return Resource.create({"service.name": settings.otel_service_name, "frontdesk.process": role})


def configure(settings: Settings, role: str = "worker", *, exporter: SpanExporter | None = None) -> bool:
    """Switch tracing on for this process as the settings say (once; later calls keep the first
    configuration); `exporter` is one more place for spans (tests: an in-memory one). Returns
    whether spans are recorded."""
    if _state.provider is not None:
        return True
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    if not endpoint and not settings.otel_console and exporter is None:
        return False
    provider = TracerProvider(resource=resource(settings, role), id_generator=_IdGenerator())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=otlp_headers(settings))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    if settings.otel_console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    _state.provider = provider
    _state.tracer = provider.get_tracer(TRACER_NAME)
    _state.capture_content = settings.otel_capture_content
    log.info(
        "tracing on (%s)",
        f"OTLP {endpoint}" if endpoint else "console" if settings.otel_console else "in process",
    )
    return True


def enabled() -> bool:
    return _state.tracer is not None


def capture_content() -> bool:
    return _state.capture_content


def flush() -> None:
    if _state.provider is not None:
        _state.provider.force_flush()


def shutdown() -> None:
    """Export what is pending and switch tracing off again (process exit, tests)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    _state.capture_content = False
    if provider is not None:
        provider.shutdown()


def tracing_interceptor() -> Any:
    """Temporal's TracingInterceptor on our tracer, or None when tracing is off."""
    if _state.tracer is None:
        return None
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(_state.tracer)


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
) -> Iterator[trace.Span]:
    """A span under the current one; with tracing off, a shared no-op span (nothing allocated)."""
    tracer = _state.tracer
    if tracer is None:
        yield _NOOP_SPAN
        return
    with tracer.start_as_current_span(name, attributes=attributes, kind=kind, start_time=start_time) as s:
        yield s


def completed_span(
    name: str, began: datetime, attributes: Mapping[str, AttributeValue] | None = None
) -> None:
    """A span that began at `began` (a wait already over, such as a checkpoint's; naive means UTC,
    as SQLite hands timestamps back) and ends now."""
    tracer = _state.tracer
    if tracer is not None:
        began = began.replace(tzinfo=UTC) if began.tzinfo is None else began
        tracer.start_span(name, attributes=attributes, start_time=int(began.timestamp() * 1e9)).end()


def set_content(s: trace.Span, key: str, value: Any) -> None:
    """Prompts and completions go on spans only with FRONTDESK_OTEL_CAPTURE_CONTENT on."""
    if _state.capture_content and s.is_recording():
        s.set_attribute(key, value if isinstance(value, str) else json.dumps(value, default=str))


def task_trace_id(task_id: str) -> int:
    """The task's trace id when no request started a trace, derived from its id so every process
    agrees without sharing state."""
    return int(hashlib.sha256(task_id.encode()).hexdigest()[:32], 16)


def workflow_span_id(task_id: str) -> int:
    """The id of the task's `invoke_workflow` span, fixed before the span is made."""
    return int(hashlib.sha256(f"{task_id}/root".encode()).hexdigest()[:16], 16)


def _task_parent(task_id: str) -> otel_context.Context:
    parent = SpanContext(
        trace_id=task_trace_id(task_id),
        span_id=workflow_span_id(task_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def traceparent(s: trace.Span | None = None) -> str:
    carrier: dict[str, str] = {}
    ctx = trace.set_span_in_context(s) if s is not None else None
    _propagator.inject(carrier, context=ctx)
    return carrier.get("traceparent", "")


@contextmanager
def task_span(task_id: str, name: str, **attributes: AttributeValue) -> Iterator[tuple[trace.Span, str]]:
    """A span for a call that leaves the process (the router); yields it and the `traceparent`
    header value that makes the far side's spans its children.

    Under the current span when there is one (the activity's, with tracing on); otherwise in the
    task's own trace. With tracing off no span is made: the header names the task's trace and a
    fresh span id, so the router's spans of one task still share a trace."""
    tracer = _state.tracer
    if tracer is None:
        yield _NOOP_SPAN, f"00-{task_trace_id(task_id):032x}-{secrets.randbits(64) or 1:016x}-01"
        return
    ctx = None if trace.get_current_span().get_span_context().is_valid else _task_parent(task_id)
    with tracer.start_as_current_span(name, context=ctx, attributes=attributes, kind=SpanKind.CLIENT) as s:
        yield s, traceparent(s)


# --- an agent step's invoke_agent span ---------------------------------------------------------


def step_span_id(task_id: str, step: str) -> int:
    """The id of a step's `invoke_agent` span, fixed so that its turns and tool calls (activities,
    perhaps on other workers) hang under it before it exists; it is emitted when the step ends."""
    return int(hashlib.sha256(f"{task_id}/step/{step}".encode()).hexdigest()[:16], 16)


@contextmanager
def under_step(task_id: str, step: str) -> Iterator[None]:
    """Spans opened inside hang under the step's `invoke_agent` span, in the current trace."""
    current = trace.get_current_span().get_span_context()
    if _state.tracer is None or not current.is_valid:
        yield
        return
    parent = SpanContext(
        trace_id=current.trace_id,
        span_id=step_span_id(task_id, step),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=current.trace_state,
    )
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent)))
    try:
        yield
    finally:
        otel_context.detach(token)


def end_step_span(
    task_id: str, step: str, agent: str, began: datetime | None, status: str, **attributes: AttributeValue
) -> None:
    """Emit an ended agent step's `invoke_agent` span (worker side, when the step's end is
    recorded): under the task's `invoke_workflow`, from the step's start, with the id its turns
    already name. Nothing without tracing, or outside a task's trace."""
    tracer = _state.tracer
    current = trace.get_current_span().get_span_context()
    if tracer is None or not current.is_valid:
        return
    parent = SpanContext(current.trace_id, workflow_span_id(task_id), True, TraceFlags(TraceFlags.SAMPLED))
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    start = None
    if began is not None:
        at = began if began.tzinfo is not None else began.replace(tzinfo=UTC)
        start = int(at.timestamp() * 1e9)
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent,
        "gen_ai.conversation.id": task_id,
        "frontdesk.task.id": task_id,
        "frontdesk.step": step,
        "frontdesk.step.status": status,
        **attributes,
    }
    token = _forced_ids.set((current.trace_id, step_span_id(task_id, step)))
    try:
        s = tracer.start_span(f"invoke_agent {agent}", context=ctx, attributes=attrs, start_time=start)
    finally:
        _forced_ids.reset(token)
    if status != "completed":
        s.set_status(trace.Status(trace.StatusCode.ERROR, status))
        s.set_attribute("error.type", status)
    s.end()


# --- the task's invoke_workflow span ------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9_@.:\-]")


def workflow_root(task_id: str, workflow: str) -> otel_context.Context:
    """The context to start a task's workflow in (API side): its parent is the task's
    `invoke_workflow` span, which does not exist yet; the tracestate says where to hang it."""
    current = trace.get_current_span().get_span_context()
    trace_id = current.trace_id if current.is_valid else task_trace_id(task_id)
    parent = f"{current.span_id:016x}" if current.is_valid else "0" * 16
    name = _UNSAFE.sub("_", workflow)[:64]
    value = f"{parent}-{time.time_ns():x}-{name}"
    base = current.trace_state if current.is_valid else TraceState()
    state = base.update(STATE_KEY, value) if STATE_KEY in base else base.add(STATE_KEY, value)
    root = SpanContext(
        trace_id=trace_id,
        span_id=workflow_span_id(task_id),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(root))


def end_workflow_span(task_id: str, status: str, outcome: str | None, error: str | None = None) -> None:
    """Emit the task's `invoke_workflow` span (worker side, when the task's end is recorded), with
    the id, parent and start the API fixed. Nothing without tracing, or outside such a trace."""
    tracer = _state.tracer
    if tracer is None:
        return
    current = trace.get_current_span().get_span_context()
    raw = current.trace_state.get(STATE_KEY) if current.is_valid else None
    if not raw or raw.count("-") < 2:
        return
    parent_hex, start_hex, name = raw.split("-", 2)
    parent_id, start_ns = int(parent_hex, 16), int(start_hex, 16)
    # Without a request around the start (parent 0) the span is a root, in the same trace.
    ctx = otel_context.Context()
    if parent_id:
        parent = SpanContext(current.trace_id, parent_id, True, TraceFlags(TraceFlags.SAMPLED))
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": name,
        "frontdesk.task.id": task_id,
        "frontdesk.task.status": status,
    }
    if outcome:
        attributes["frontdesk.task.outcome"] = outcome
    token = _forced_ids.set((current.trace_id, workflow_span_id(task_id)))
    try:
        s = tracer.start_span(
            f"invoke_workflow {name}", context=ctx, attributes=attributes, start_time=start_ns
        )
    finally:
        _forced_ids.reset(token)
    if status not in ("completed",):
        s.set_status(trace.Status(trace.StatusCode.ERROR, error or status))
        s.set_attribute("error.type", status)
    s.end()


# --- the API's request spans ------------------------------------------------------------------


# Probes, scrapes, static files and the API's own docs start no trace.
UNTRACED = ("/healthz", "/readyz", "/metrics", "/static/", "/docs", "/redoc", "/openapi.json")


class RequestSpans:
    """A SERVER span per request to the API or a page (a task submitted from the web form too),
    continuing the caller's `traceparent` if it sends one, so a task's trace starts at the request
    that submitted it. Only installed with tracing on. Attributes: method, route template, path,
    status; never headers, query or body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        tracer = _state.tracer
        if tracer is None or scope["type"] != "http" or scope["path"].startswith(UNTRACED):
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in (b"traceparent", b"tracestate")
        }
        parent = _propagator.extract(carrier) if carrier else None
        method = scope["method"]
        status: dict[str, int] = {}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        attributes = {"http.request.method": method, "url.path": scope["path"]}
        with tracer.start_as_current_span(
            f"{method} {scope['path']}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as s:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if template:
                    s.update_name(f"{method} {template}")
                    s.set_attribute("http.route", template)
                if "code" in status:
                    s.set_attribute("http.response.status_code", status["code"])
                    if status["code"] >= 500:
                        s.set_status(trace.Status(trace.StatusCode.ERROR))
