"""Metrics: the GenAI client metrics and Frontdesk's own, exported by OTLP/HTTP and/or rendered as
Prometheus text for the API's `/metrics`.

Off by default: every `record_*` function returns at once. `configure()` switches metrics on for
the process (once). Counters are counted where the event happens (model calls, policy denials,
budget breaches and escalations in the worker; kill-switch flips in the API); the state of the
house (tasks by status, open checkpoints and the oldest one's age) is read from the database when a
reader collects, so every API replica reports the same whole picture. docs/observability.md lists
them all. Attributes carry names (tier, model, tool, rule, status), never tenants' data or secrets.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from orchestrator.settings import Settings

log = logging.getLogger(__name__)

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
# Bucket boundaries the GenAI metric conventions advise.
TOKEN_BUCKETS = [4.0**i for i in range(14)]
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]
TASK_COST_BUCKETS = [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0]


class Instruments:
    def __init__(self, meter: Meter) -> None:
        self.token_usage: Histogram = meter.create_histogram(
            TOKEN_USAGE, unit="{token}", description="Tokens used per model call, by type (input, output)."
        )
        self.operation_duration: Histogram = meter.create_histogram(
            OPERATION_DURATION, unit="s", description="Duration of one logical model call (all its requests)."
        )
        self.model_cost: Counter = meter.create_counter(
            "frontdesk.model_calls.cost", unit="USD", description="What model calls cost, by tier asked."
        )
        self.tasks_ended: Counter = meter.create_counter(
            "frontdesk.tasks.ended", unit="{task}", description="Tasks that ended, by status and outcome."
        )
        self.task_cost: Histogram = meter.create_histogram(
            "frontdesk.task.cost",
            unit="USD",
            description="What a task cost when it ended, by status and outcome.",
        )
        self.escalations: Counter = meter.create_counter(
            "frontdesk.checkpoint.escalations", unit="{escalation}", description="Checkpoint SLA escalations."
        )
        self.budget_breaches: Counter = meter.create_counter(
            "frontdesk.budget.breaches", unit="{breach}", description="Reservations a budget limit refused."
        )
        self.policy_denials: Counter = meter.create_counter(
            "frontdesk.policy.denials",
            unit="{call}",
            description="Tool calls the policy refused, by tool and rule.",
        )
        self.switch_flips: Counter = meter.create_counter(
            "frontdesk.switch.flips",
            unit="{flip}",
            description="Kill-switch flips, by scope, mode and state.",
        )


class _State:
    provider: MeterProvider | None = None
    instruments: Instruments | None = None
    prometheus: InMemoryMetricReader | None = None
    observing = False


_state = _State()


def configure(settings: Settings, role: str, *, prometheus: bool = False) -> bool:
    """Metrics on for this process when OTLP export is set or `prometheus` (the API serves
    /metrics); once per process. Returns whether they are on."""
    if _state.provider is not None:
        return True
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    readers: list[MetricReader] = []
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        from orchestrator.telemetry import otlp_headers

        exporter = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", headers=otlp_headers(settings))
        interval = int(settings.otel_metric_export_interval_seconds * 1000)
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
    if prometheus:
        _state.prometheus = InMemoryMetricReader()
        readers.append(_state.prometheus)
    if not readers:
        return False
    from orchestrator.telemetry import resource

    views = [
        View(instrument_name=TOKEN_USAGE, aggregation=ExplicitBucketHistogramAggregation(TOKEN_BUCKETS)),
        View(
            instrument_name=OPERATION_DURATION,
            aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS),
        ),
        View(
            instrument_name="frontdesk.task.cost",
            aggregation=ExplicitBucketHistogramAggregation(TASK_COST_BUCKETS),
        ),
    ]
    _state.provider = MeterProvider(metric_readers=readers, resource=resource(settings, role), views=views)
    _state.instruments = Instruments(_state.provider.get_meter("frontdesk"))
    return True


def enabled() -> bool:
    return _state.instruments is not None


def meter() -> Meter | None:
    return _state.provider.get_meter("frontdesk") if _state.provider is not None else None


def flush() -> None:
    if _state.provider is not None:
        _state.provider.force_flush()


def shutdown() -> None:
    provider, _state.provider, _state.instruments, _state.prometheus = _state.provider, None, None, None
    _state.observing = False
    if provider is not None:
        provider.shutdown()


# --- recording (each a no-op with metrics off) ---------------------------------------------------


def record_chat(
    *,
    tier: str,
    model: str | None,
    seconds: float,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float,
    error: str | None = None,
) -> None:
    m = _state.instruments
    if m is None:
        return
    attrs: dict[str, str] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "_OTHER",
        "gen_ai.request.model": tier,
    }
    if model:
        attrs["gen_ai.response.model"] = model
    if error:
        m.operation_duration.record(seconds, {**attrs, "error.type": error})
        return
    m.operation_duration.record(seconds, attrs)
    m.token_usage.record(input_tokens, {**attrs, "gen_ai.token.type": "input"})
    m.token_usage.record(output_tokens, {**attrs, "gen_ai.token.type": "output"})
    if cost_usd:
        m.model_cost.add(cost_usd, {"gen_ai.request.model": tier})


def record_task_end(status: str, outcome: str | None, cost_usd: float | None) -> None:
    m = _state.instruments
    if m is None:
        return
    attrs = {"frontdesk.task.status": status, "frontdesk.task.outcome": outcome or "none"}
    m.tasks_ended.add(1, attrs)
    if cost_usd is not None:
        m.task_cost.record(cost_usd, attrs)


def record_escalation(level: int) -> None:
    if _state.instruments is not None:
        _state.instruments.escalations.add(1, {"frontdesk.checkpoint.escalation_level": level})


def record_budget_breach(scope: str) -> None:
    if _state.instruments is not None:
        _state.instruments.budget_breaches.add(1, {"frontdesk.budget.scope": scope})


def record_policy_denial(tool: str, rule: str) -> None:
    if _state.instruments is not None:
        _state.instruments.policy_denials.add(1, {"gen_ai.tool.name": tool, "frontdesk.policy.rule": rule})


def record_switch_flip(scope: str, mode: str, active: bool) -> None:
    if _state.instruments is not None:
        attrs: dict[str, str | bool] = {
            "frontdesk.switch.scope": scope,
            "frontdesk.switch.mode": mode,
            "frontdesk.switch.active": active,
        }
        _state.instruments.switch_flips.add(1, attrs)


def observe_state(read: Callable[[], dict[str, Any]]) -> None:
    """Gauges of the house's state, read by `read()` (the API's database query) when a reader
    collects: {"tasks": {(status, outcome): n}, "open_checkpoints": {kind: (n, oldest_created_ts)}}."""
    m = meter()
    if m is None or _state.observing:
        return
    _state.observing = True
    cache: dict[str, Any] = {"at": 0.0, "value": None}

    def snapshot() -> dict[str, Any]:
        # One query per collection, shared by the three gauges (collected within a second).
        if cache["value"] is None or time.monotonic() - cache["at"] > 1.0:
            try:
                cache["value"] = read()
            except Exception:
                log.warning("metrics: could not read the task and checkpoint counts", exc_info=True)
                cache["value"] = {"tasks": {}, "open_checkpoints": {}}
            cache["at"] = time.monotonic()
        return cache["value"]  # type: ignore[no-any-return]

    def tasks(_: CallbackOptions) -> Iterable[Observation]:
        for (status, outcome), n in snapshot()["tasks"].items():
            yield Observation(
                n, {"frontdesk.task.status": status, "frontdesk.task.outcome": outcome or "none"}
            )

    def open_count(_: CallbackOptions) -> Iterable[Observation]:
        for kind, (n, _oldest) in snapshot()["open_checkpoints"].items():
            yield Observation(n, {"frontdesk.checkpoint.kind": kind})

    def oldest_age(_: CallbackOptions) -> Iterable[Observation]:
        now = time.time()
        for kind, (_n, oldest) in snapshot()["open_checkpoints"].items():
            yield Observation(max(0.0, now - oldest), {"frontdesk.checkpoint.kind": kind})

    m.create_observable_gauge(
        "frontdesk.tasks", [tasks], unit="{task}", description="Tasks by status and outcome."
    )
    m.create_observable_gauge(
        "frontdesk.checkpoints.open",
        [open_count],
        unit="{checkpoint}",
        description="Open checkpoints, by kind.",
    )
    m.create_observable_gauge(
        "frontdesk.checkpoints.oldest_age",
        [oldest_age],
        unit="s",
        description="Age of the oldest open checkpoint, by kind.",
    )


# --- Prometheus text exposition (format 0.0.4) ---------------------------------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_UNIT_SUFFIX = {"s": "seconds", "USD": "usd", "{token}": "tokens"}


def _prom_name(name: str, unit: str) -> str:
    base = "".join(c if c.isalnum() else "_" for c in name)
    suffix = _UNIT_SUFFIX.get(unit)
    return f"{base}_{suffix}" if suffix and not base.endswith(suffix) else base


def _labels(attrs: Any, extra: dict[str, str] | None = None) -> str:
    items = {**{str(k): v for k, v in (attrs or {}).items()}, **(extra or {})}
    if not items:
        return ""
    parts = []
    for k, v in sorted(items.items()):
        key = "".join(c if c.isalnum() else "_" for c in k)
        text = str(v).lower() if isinstance(v, bool) else str(v)
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{key}="{text}"')
    return "{" + ",".join(parts) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def prometheus_text() -> str | None:
    """This process's metrics in the Prometheus text format; None when metrics are off."""
    reader = _state.prometheus
    if reader is None:
        return None
    data = reader.get_metrics_data()
    lines: list[str] = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                name = _prom_name(metric.name, metric.unit or "")
                point_data = metric.data
                if isinstance(point_data, Sum) and point_data.is_monotonic:
                    kind, name = "counter", f"{name}_total"
                elif isinstance(point_data, (Sum, Gauge)):
                    kind = "gauge"
                else:
                    kind = "histogram"
                lines.append(f"# HELP {name} {metric.description or metric.name}")
                lines.append(f"# TYPE {name} {kind}")
                for point in point_data.data_points:
                    if isinstance(point, NumberDataPoint):
                        lines.append(f"{name}{_labels(point.attributes)} {_num(point.value)}")
                    elif isinstance(point, HistogramDataPoint):
                        cumulative = 0
                        bounds = [*point.explicit_bounds, math.inf]
                        for bound, count in zip(bounds, point.bucket_counts, strict=False):
                            cumulative += count
                            le = {"le": _num(float(bound))}
                            lines.append(f"{name}_bucket{_labels(point.attributes, le)} {cumulative}")
                        lines.append(f"{name}_sum{_labels(point.attributes)} {_num(point.sum)}")
                        lines.append(f"{name}_count{_labels(point.attributes)} {point.count}")
    return "\n".join(lines) + "\n"


def house_state(engine: Any) -> dict[str, Any]:
    """Tasks by status and outcome, open checkpoints by kind with the oldest one's creation time
    (for `observe_state`): two grouped counts, both on indexed status columns."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from orchestrator.db import session_scope
    from orchestrator.models import Checkpoint, Task, as_utc

    with session_scope(engine) as session:
        tasks = session.exec(
            select(col(Task.status), col(Task.outcome), func.count()).group_by(
                col(Task.status), col(Task.outcome)
            )
        ).all()
        open_cps = session.exec(
            select(col(Checkpoint.kind), func.count(), func.min(col(Checkpoint.created_at)))
            .where(col(Checkpoint.status) == "open")
            .group_by(col(Checkpoint.kind))
        ).all()
    return {
        "tasks": {(status, outcome): n for status, outcome, n in tasks},
        "open_checkpoints": {kind: (n, as_utc(oldest).timestamp()) for kind, n, oldest in open_cps},
    }
