"""A task's live timeline: its steps, and in each step what happened in order — model calls (the
agent's turns), tool calls with the policy decision, checkpoints with who decided what.

Built from the same `TaskDetail` the REST API returns (`GET /api/tasks/{id}`), so the page and
the API can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.contracts import TERMINAL_STATUSES
from orchestrator.models import Checkpoint, Membership, User
from orchestrator.services import checkpoints as checkpoint_service
from orchestrator.services.schemas import CheckpointDetail, StepPublic, TaskDetail

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class Entry:
    kind: str  # model | tool | checkpoint
    at: datetime
    item: Any


@dataclass
class StepGroup:
    name: str
    step: StepPublic | None
    entries: list[Entry] = field(default_factory=list)

    @property
    def cost(self) -> Any:
        return sum((e.item.cost_usd for e in self.entries if e.kind == "model"), start=0)


@dataclass
class Timeline:
    task: TaskDetail
    groups: list[StepGroup]
    checkpoints: dict[str, CheckpointDetail]
    names: dict[str, str]
    ended: bool
    attachment: dict[str, Any] | None

    @property
    def tokens(self) -> tuple[int, int]:
        calls = self.task.model_calls
        return sum(c.prompt_tokens for c in calls), sum(c.completion_tokens for c in calls)


def people_names(session: Session, tenant_id: str) -> dict[str, str]:
    """user id -> name, for the members of this tenant only."""
    rows = session.exec(
        select(User.id, User.name)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.tenant_id == tenant_id)
    ).all()
    return dict(rows)


def build(session: Session, detail: TaskDetail, tenant_id: str) -> Timeline:
    groups: dict[str, StepGroup] = {s.name: StepGroup(s.name, s) for s in detail.steps}

    def group(name: str) -> StepGroup:
        return groups.setdefault(name, StepGroup(name, None))

    for m in detail.model_calls:
        group(m.step).entries.append(Entry("model", m.created_at, m))
    for t in detail.tool_calls:
        group(t.step).entries.append(Entry("tool", t.created_at or _EPOCH, t))
    checkpoints: dict[str, CheckpointDetail] = {}
    for c in detail.checkpoints:
        row = session.exec(
            select(Checkpoint).where(Checkpoint.id == c.id, Checkpoint.tenant_id == tenant_id)
        ).one()
        checkpoints[c.id] = checkpoint_service.detail(session, row)
        group(c.step).entries.append(Entry("checkpoint", c.created_at, checkpoints[c.id]))
    for g in groups.values():
        g.entries.sort(key=lambda e: e.at)
    ordered = sorted(
        groups.values(),
        key=lambda g: (g.step.index if g.step else 10_000, g.entries[0].at if g.entries else _EPOCH),
    )
    return Timeline(
        task=detail,
        groups=ordered,
        checkpoints=checkpoints,
        names=people_names(session, tenant_id),
        ended=detail.status in TERMINAL_STATUSES,
        attachment=detail.data.get("attachment") if isinstance(detail.data.get("attachment"), dict) else None,
    )
