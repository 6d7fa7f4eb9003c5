"""Tracing: one trace per task, so the router's spans join the task's trace (W3C traceparent)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_provider = TracerProvider()
_propagator = TraceContextTextMapPropagator()


def configure(console: bool) -> None:
    if console:
        _provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))


def task_trace_id(task_id: str) -> int:
    """The task's trace id, derived from its id so every process agrees without sharing state."""
    return int(hashlib.sha256(task_id.encode()).hexdigest()[:32], 16)


@contextmanager
def task_span(task_id: str, name: str, **attributes: str | int) -> Iterator[str]:
    """Open a span inside the task's trace; yields the `traceparent` header value for it."""
    parent = SpanContext(
        trace_id=task_trace_id(task_id),
        span_id=int(hashlib.sha256(f"{task_id}/root".encode()).hexdigest()[:16], 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    tracer = _provider.get_tracer("frontdesk")
    with tracer.start_as_current_span(name, context=ctx, attributes=attributes) as span:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier, context=trace.set_span_in_context(span))
        yield carrier.get("traceparent", "")
