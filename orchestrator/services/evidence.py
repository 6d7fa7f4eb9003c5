"""A task's evidence bundle, read from the database for someone who may read the task.

Who may: the task's requester, and those who may read every task of the tenant (approvers,
admins, auditors); anyone else gets the same 404 as for a task of another tenant. The chain
segment that links the task's events to an anchored head holds other tasks' events of the tenant,
so it goes only to those who may read the whole audit trail (audit:read: admins, auditors); the
others get the task's events with their hashes and a note saying why there is no link.

The bundle never holds credentials: no token, password, session or router key is a column of the
rows it reads, and the anchor record carries the key's id, never the key.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from orchestrator import audit_anchor
from orchestrator.audit import _iso
from orchestrator.evidence import (
    AuditEvidence,
    Bundle,
    CheckpointEvidence,
    CommentEvidence,
    DecisionEvidence,
    DefinitionEvidence,
    EventEvidence,
    ModelCallEvidence,
    RequestEvidence,
    ToolCallEvidence,
    canonical_digest,
)
from orchestrator.models import (
    AuditEvent,
    Checkpoint,
    CheckpointComment,
    CheckpointDecision,
    ModelCall,
    Task,
    ToolCall,
    as_utc,
    utcnow,
)
from orchestrator.services.access import Principal, can
from orchestrator.services.state import AppState
from orchestrator.services.tasks import visible_task

# A segment longer than this is left out (with a note): a busy tenant's rows between a task's first
# event and the next anchor could make a bundle of any size.
MAX_SEGMENT = 20_000


def _ts(dt: datetime | None) -> str | None:
    return None if dt is None else as_utc(dt).isoformat()


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def build(session: Session, state: AppState, user: Principal, task_id: str) -> Bundle:
    task = visible_task(session, state, user, task_id)
    scoped = (col(ModelCall.tenant_id) == task.tenant_id, col(ModelCall.task_id) == task.id)
    calls = session.exec(
        select(ModelCall).where(*scoped).order_by(col(ModelCall.created_at), col(ModelCall.attempt))
    ).all()
    tools = session.exec(
        select(ToolCall)
        .where(ToolCall.tenant_id == task.tenant_id, ToolCall.task_id == task.id)
        .order_by(col(ToolCall.created_at))
    ).all()
    return Bundle(
        generated_at=utcnow().isoformat(),
        generated_by=f"user:{user.user_id}",
        tenant_id=task.tenant_id,
        request=_request(task),
        definitions=[_definition(task)],
        model_calls=[_model_call(m) for m in calls],
        tool_calls=[_tool_call(t) for t in tools],
        checkpoints=_checkpoints(session, task),
        audit=_audit(session, state, user, task),
    )


def _request(task: Task) -> RequestEvidence:
    output = _loads(task.output_json)
    return RequestEvidence(
        task_id=task.id,
        requester_id=task.requester_id,
        workflow=f"{task.workflow_name}@{task.workflow_version}",
        input=task.input_text,
        data=json.loads(task.input_json),
        budget_usd=None if task.budget_usd is None else str(task.budget_usd),
        status=task.status,
        outcome=task.outcome,
        output_digest=None if output is None else canonical_digest(output),
        error=task.error,
        created_at=as_utc(task.created_at).isoformat(),
        ended_at=_ts(task.ended_at),
    )


def _definition(task: Task) -> DefinitionEvidence:
    definition = json.loads(task.definition_json)
    return DefinitionEvidence(
        kind="workflow",
        ref=f"{task.workflow_name}@{task.workflow_version}",
        digest=canonical_digest(definition),
        definition=definition,
    )


def _model_call(m: ModelCall) -> ModelCallEvidence:
    return ModelCallEvidence(
        id=m.id,
        request_id=m.request_id,
        activity_attempt=m.activity_attempt,
        attempt=m.attempt,
        step=m.step,
        agent=m.agent,
        turn=m.turn,
        tier=m.tier,
        model_served=m.model_served,
        model_group=m.model_group,
        prompt_tokens=m.prompt_tokens,
        completion_tokens=m.completion_tokens,
        cached_tokens=m.cached_tokens,
        cost_usd=str(m.cost_usd),
        cost_estimated=m.cost_estimated,
        latency_ms=m.latency_ms,
        ok=m.ok,
        status=m.status,
        prompt_digest=m.prompt_digest,
        created_at=as_utc(m.created_at).isoformat(),
    )


def _tool_call(t: ToolCall) -> ToolCallEvidence:
    return ToolCallEvidence(
        id=t.id,
        step=t.step,
        turn=t.turn,
        agent=t.agent,
        tool=t.tool,
        tool_version=t.tool_version,
        args=json.loads(t.args_json),
        args_digest=t.args_digest,
        effect=t.effect,
        policy_version=t.policy_version,
        rule=t.rule,
        rule_id=t.rule_id,
        status=t.status,
        result_digest=t.result_digest,
        error=t.error,
        created_at=as_utc(t.created_at).isoformat(),
    )


def _checkpoints(session: Session, task: Task) -> list[CheckpointEvidence]:
    cps = session.exec(
        select(Checkpoint)
        .where(Checkpoint.tenant_id == task.tenant_id, Checkpoint.task_id == task.id)
        .order_by(col(Checkpoint.created_at))
    ).all()
    ids = [c.id for c in cps]
    decisions = session.exec(
        select(CheckpointDecision)
        .where(col(CheckpointDecision.checkpoint_id).in_(ids))
        .order_by(col(CheckpointDecision.created_at), col(CheckpointDecision.id))
    ).all()
    comments = session.exec(
        select(CheckpointComment)
        .where(col(CheckpointComment.checkpoint_id).in_(ids))
        .order_by(col(CheckpointComment.created_at), col(CheckpointComment.id))
    ).all()
    return [
        CheckpointEvidence(
            id=c.id,
            kind=c.kind,
            step=c.step,
            tool=c.tool,
            tool_call_id=c.tool_call_id,
            args=json.loads(c.args_json),
            args_digest=c.args_digest,
            policy_version=c.policy_version,
            rule=c.rule,
            rule_id=c.rule_id,
            assignee_role=c.assignee_role,
            extra_roles=[r for r in c.extra_roles.split(",") if r],
            named_approvers=[u for u in c.named_approvers.split(",") if u],
            approvers_required=c.approvers_required,
            status=c.status,
            decided_by=c.decided_by,
            decided_at=_ts(c.decided_at),
            edit_diff=_loads(c.edit_diff_json),
            decisions=[
                DecisionEvidence(
                    decider_id=d.decider_id,
                    decision=d.decision,
                    round=d.round,
                    comment=d.comment,
                    edited_args=_loads(d.edited_args_json),
                    created_at=as_utc(d.created_at).isoformat(),
                )
                for d in decisions
                if d.checkpoint_id == c.id
            ],
            comments=[
                CommentEvidence(
                    author_id=m.author_id, body=m.body, created_at=as_utc(m.created_at).isoformat()
                )
                for m in comments
                if m.checkpoint_id == c.id
            ],
            created_at=as_utc(c.created_at).isoformat(),
        )
        for c in cps
    ]


def _event(e: AuditEvent) -> EventEvidence:
    return EventEvidence(
        seq=e.seq,
        task_id=e.task_id,
        actor=e.actor,
        action=e.action,
        subject=e.subject,
        reason=e.reason,
        data=json.loads(e.data_json),
        at=_iso(e.at),
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


def _audit(session: Session, state: AppState, user: Principal, task: Task) -> AuditEvidence:
    rows = session.exec(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == task.tenant_id, AuditEvent.task_id == task.id)
        .order_by(col(AuditEvent.seq))
    ).all()
    out = AuditEvidence(events=[_event(e) for e in rows])
    where = audit_anchor.configured(state.settings)
    if not rows:
        out.anchor_note = "the task has no audit events"
    elif where is None:
        out.anchor_note = "anchoring is off (no FRONTDESK_AUDIT_ANCHOR_FILE)"
    elif not can(state, user, "audit", "read"):
        out.anchor_note = (
            "the chain segment to the anchor holds other tasks' events: only those who may read "
            "the audit trail (admins, auditors) receive it"
        )
    else:
        _link(session, out, task.tenant_id, rows[0].seq, rows[-1].seq, *where)
    return out


def _link(
    session: Session, out: AuditEvidence, tenant_id: str, first: int, last: int, path: str, key: audit_anchor.Keys
) -> None:
    anchor = audit_anchor.covering(audit_anchor.read(path, key), tenant_id, last)
    if anchor is None:
        out.anchor_note = f"no anchor covers seq {last} yet (the next anchoring run will)"
        return
    if anchor.seq - first > MAX_SEGMENT:
        out.anchor_note = (
            f"the chain from seq {first} to the anchor at seq {anchor.seq} is longer than "
            f"{MAX_SEGMENT} rows: verify the tenant's chain with `frontdesk audit verify` instead"
        )
        return
    segment = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.tenant_id == tenant_id,
            col(AuditEvent.seq) > first,
            col(AuditEvent.seq) <= anchor.seq,
            (col(AuditEvent.task_id).is_(None)) | (col(AuditEvent.task_id) != out.events[0].task_id),
        )
        .order_by(col(AuditEvent.seq))
    ).all()
    out.segment = [_event(e) for e in segment]
    out.anchor = audit_anchor.record_at(path, anchor.line)
