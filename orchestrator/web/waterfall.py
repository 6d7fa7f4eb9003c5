"""Where a task's time and money went: a waterfall of its steps, model calls, tool calls and the
waits at its checkpoints, drawn on the server (partials/charts.html `waterfall`) with the same
numbers in a table beside it.

Built from the task's `TaskDetail` (the rows the API returns), so it needs no tracing backend:
- a step runs from its start to its end (or to now, while it runs);
- a model call from the moment its request was recorded, before it was sent, for the latency the
  router reported;
- a tool call from its authorization to its last update (its result): a call that needed an
  approval spans the wait too, which its checkpoint's own bar shows;
- a checkpoint wait from its opening to its decision (or to now, while it is open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from orchestrator.budgets.rules import usd
from orchestrator.services.schemas import TaskDetail

COLOURS = {"step": "#5f6b77", "model": "#0b57d0", "tool": "#1e7e34", "wait": "#b35c00"}
# A tool call in one of these has not finished: its bar runs to now (or to the task's end).
UNDECIDED_TOOL_STATUSES = ("allowed", "awaiting_approval", "approved", "running")
KIND_NAMES = {"step": "step", "model": "model call", "tool": "tool call", "wait": "waiting for a decision"}


@dataclass(frozen=True)
class Bar:
    kind: str  # step | model | tool | wait
    label: str
    start_ms: float  # from the task's submission
    duration_ms: float
    cost_usd: Decimal | None
    running: bool  # still going: drawn up to now

    @property
    def text(self) -> str:
        took = duration_text(self.duration_ms) + (" so far" if self.running else "")
        return took if self.cost_usd is None else f"{took} · {usd(self.cost_usd)}"


@dataclass(frozen=True)
class Waterfall:
    bars: list[Bar]
    total_ms: float

    @property
    def desc(self) -> str:
        if not self.bars:
            return "Nothing has run yet."
        counts = {k: sum(1 for b in self.bars if b.kind == k) for k in KIND_NAMES}
        parts = [f"{n} {KIND_NAMES[k]}{'' if n == 1 else 's'}" for k, n in counts.items() if n]
        longest = max((b for b in self.bars if b.kind != "step"), key=lambda b: b.duration_ms, default=None)
        text = f"{duration_text(self.total_ms)} from submission: " + ", ".join(parts) + "."
        if longest is not None:
            text += f" Longest: {longest.label}, {duration_text(longest.duration_ms)}."
        return text


def duration_text(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def build(detail: TaskDetail, now: datetime) -> Waterfall:
    origin = detail.created_at

    def bar(kind: str, label: str, start: datetime, end: datetime | None, cost: Decimal | None = None) -> Bar:
        finish = end if end is not None else now
        return Bar(
            kind=kind,
            label=label,
            start_ms=max(0.0, (start - origin) / timedelta(milliseconds=1)),
            duration_ms=max(0.0, (finish - start) / timedelta(milliseconds=1)),
            cost_usd=cost,
            running=end is None,
        )

    bars: list[Bar] = []
    for s in detail.steps:
        if s.started_at is not None:
            ended = s.ended_at if s.ended_at is not None or detail.ended_at is None else detail.ended_at
            cost = sum((m.cost_usd for m in detail.model_calls if m.step == s.name), Decimal(0))
            bars.append(bar("step", f"step {s.index + 1}: {s.name}", s.started_at, ended, cost))
    for m in detail.model_calls:
        served = f" → {m.model_served}" if m.model_served and m.model_served != m.tier else ""
        end = m.created_at + timedelta(milliseconds=m.latency_ms) if m.status != "sent" else None
        bars.append(bar("model", f"{m.tier}{served}, turn {m.turn}", m.created_at, end, m.cost_usd))
    for t in detail.tool_calls:
        if t.created_at is not None:
            end = t.updated_at if t.status not in UNDECIDED_TOOL_STATUSES else detail.ended_at
            bars.append(bar("tool", f"{t.tool} ({t.effect}, {t.status})", t.created_at, end))
    for c in detail.checkpoints:
        end = c.decided_at or detail.ended_at  # a checkpoint closed by the task's end has no decision
        bars.append(bar("wait", f"approval of {c.tool or c.kind} ({c.status})", c.created_at, end))
    bars.sort(key=lambda b: (b.start_ms, b.kind != "step"))
    total = max((b.start_ms + b.duration_ms for b in bars), default=0.0)
    if detail.ended_at is not None:
        total = max(total, (detail.ended_at - origin) / timedelta(milliseconds=1))
    return Waterfall(bars=bars, total_ms=total)
