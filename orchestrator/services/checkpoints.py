"""Checkpoints as people see them: the inbox, one checkpoint, decisions, reassignment, comments.

Decisions and reassignments go to the task's workflow as validated updates, so the workflow, the
single owner of the checkpoint's state, accepts or refuses them; the API first checks what it can
(tenant; then `refusal_for`: the policy engine and the rule of `orchestrator.contracts.deciders`
that the workflow applies too) to answer with a clear status at once.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator import audit
from orchestrator.contracts import (
    DECIDE_UPDATE_NAME,
    REASSIGN_UPDATE_NAME,
    DecisionRequest,
    ReassignRequest,
)
from orchestrator.contracts.deciders import Refusal, why_not_decide
from orchestrator.contracts.failures import CHECKPOINT_NOT_OPEN, CONFLICT, DATA_ERROR, EDIT_REFUSED, FORBIDDEN
from orchestrator.errors import Conflict, Forbidden, NotFound, ServiceError, ServiceUnavailable, Unprocessable
from orchestrator.models import (
    Checkpoint,
    CheckpointComment,
    CheckpointDecision,
    Membership,
    Task,
    User,
    workflow_id_of,
)
from orchestrator.services.access import Principal, can
from orchestrator.services.checkpoint_updates import NotAccepted, Pending, send_bounded
from orchestrator.services.schemas import (
    CheckpointDetail,
    CheckpointPublic,
    CommentPublic,
    DecisionPublic,
    MyDecision,
    _utc,
)
from orchestrator.services.state import AppState

log = logging.getLogger(__name__)

# The ApplicationError types the checkpoint updates refuse with (their messages are for people).
REFUSALS = frozenset({CHECKPOINT_NOT_OPEN, CONFLICT, EDIT_REFUSED, FORBIDDEN})

NEEDS_APPROVER = "Deciding a checkpoint needs the approver role."
APPROVALS = ("approve", "approve_with_edits")


def get_checkpoint(session: Session, user: Principal, checkpoint_id: str) -> Checkpoint:
    cp = session.exec(
        select(Checkpoint).where(Checkpoint.id == checkpoint_id, Checkpoint.tenant_id == user.tenant_id)
    ).first()
    if cp is None:
        raise NotFound(f"No checkpoint {checkpoint_id!r} in tenant {user.tenant_id!r}.")
    return cp


def visible_checkpoint(session: Session, state: AppState, user: Principal, checkpoint_id: str) -> Checkpoint:
    """The checkpoint, if this person may see it: approvers and admins (`checkpoint:read`) and the
    task's requester. Another tenant's checkpoint is not found (404); anyone else is refused (403)."""
    cp = get_checkpoint(session, user, checkpoint_id)
    if not (can(state, user, "checkpoint", "read") or cp.requester_id == user.user_id):
        raise Forbidden("Only approvers, admins and the task's requester may see this checkpoint.")
    return cp


def refusal_for(session: Session, state: AppState, user: Principal, cp: Checkpoint) -> Refusal | None:
    """Why this person may not decide `cp` now, or None. The API and the web pages both ask this.

    The rule the workflow applies too (`orchestrator.contracts.deciders`), fed from the
    checkpoint's row and the approvals of its current round, and the policy engine (may this
    person's roles decide checkpoints in this tenant at all). A closed checkpoint (409) and
    four-eyes (403) are said first, whatever the roles: they are the reasons a person can act on.
    """
    refusal = why_not_decide(
        status=cp.status,
        requester_id=cp.requester_id,
        assignee_roles=[cp.assignee_role, *_split(cp.extra_roles)],
        named_approvers=_split(cp.named_approvers),
        approved_by=current_approvers(session, [cp.id])[cp.id],
        decider_id=user.user_id,
        decider_roles=user.roles,
    )
    if refusal is not None and refusal.kind in ("not_open", "own_task"):
        return refusal
    if not can(state, user, "checkpoint", "decide"):
        return Refusal("not_assigned", NEEDS_APPROVER)
    return refusal


def refused(refusal: Refusal) -> ServiceError:
    """The error a refusal answers with: 409 when the checkpoint's state refuses, else 403."""
    return Conflict(refusal.message) if refusal.is_conflict else Forbidden(refusal.message)


def _split(csv: str) -> list[str]:
    return [item for item in csv.split(",") if item]


def inbox_filter(user: Principal) -> Any:
    """Checkpoints this person may decide: one of their roles is assigned, or they are named."""
    clauses: list[ColumnElement[bool]] = [col(Checkpoint.assignee_role).in_(user.roles)]
    clauses += [col(Checkpoint.extra_roles).contains(role) for role in user.roles]
    clauses.append(col(Checkpoint.named_approvers).contains(user.user_id))
    return (or_(*clauses), Checkpoint.requester_id != user.user_id)


def detail(session: Session, cp: Checkpoint) -> CheckpointDetail:
    decisions = session.exec(
        select(CheckpointDecision)
        .where(CheckpointDecision.checkpoint_id == cp.id)
        .order_by(col(CheckpointDecision.id))
    ).all()
    comments = session.exec(
        select(CheckpointComment)
        .where(CheckpointComment.checkpoint_id == cp.id)
        .order_by(col(CheckpointComment.id))
    ).all()
    public = CheckpointPublic.build(cp)
    return CheckpointDetail(
        **public.model_dump(),
        sla=json.loads(cp.sla_json),
        decisions=[
            DecisionPublic(
                decider_id=d.decider_id,
                decision=d.decision,
                round=d.round,
                comment=d.comment,
                edited_args=json.loads(d.edited_args_json) if d.edited_args_json else None,
                created_at=CheckpointPublic.build(cp).created_at if d.created_at is None else d.created_at,
            )
            for d in decisions
        ],
        comments=[
            CommentPublic(author_id=c.author_id, body=c.body, created_at=c.created_at) for c in comments
        ],
    )


async def decide(
    session: Session,
    state: AppState,
    user: Principal,
    checkpoint_id: str,
    decision: str,
    comment: str,
    edited_args: dict[str, Any] | None = None,
) -> Checkpoint:
    """Database work runs in the thread pool and no connection is held across the Temporal call:
    a burst of decisions must neither stall the event loop nor pin the pool."""
    if decision == "request_changes" and not comment.strip():
        raise Unprocessable("Request changes needs a comment telling the agent what to change.")
    cp, workflow_id = await run_in_threadpool(
        _decidable, session, state, user, checkpoint_id, decision, edited_args
    )
    # From a mapping: `decision` arrives as a plain string, and pydantic checks it is a DecisionKind.
    req = DecisionRequest.model_validate(
        {
            "checkpoint_id": cp.id,
            "decision": decision,
            "decider_id": user.user_id,
            "decider_roles": list(user.roles),
            "comment": comment,
            "edited_args": edited_args,
        }
    )
    recorded = (user.user_id, decision)
    update_id = f"decide-{uuid.uuid4().hex}"
    await _update(session, state, cp, workflow_id, DECIDE_UPDATE_NAME, req, update_id, recorded=recorded)
    return await run_in_threadpool(_reload, session, cp.id)


def _recorded(session: Session, cp: Checkpoint, decider_id: str, decision: str) -> bool:
    """Whether this person's `decision` is recorded in the checkpoint's latest round."""
    rows = session.exec(
        select(CheckpointDecision.round, CheckpointDecision.decider_id, CheckpointDecision.decision).where(
            CheckpointDecision.checkpoint_id == cp.id, CheckpointDecision.tenant_id == cp.tenant_id
        )
    ).all()
    if not rows:
        return False
    latest = max(r for r, _, _ in rows)
    return (latest, decider_id, decision) in set(rows)


def _decidable(
    session: Session,
    state: AppState,
    user: Principal,
    checkpoint_id: str,
    decision: str,
    edited_args: dict[str, Any] | None,
) -> tuple[Checkpoint, str]:
    cp = get_checkpoint(session, user, checkpoint_id)
    refusal = refusal_for(session, state, user, cp)
    if refusal is not None and refusal.kind == "not_open" and _recorded(session, cp, user.user_id, decision):
        # A retry of a decision that was recorded although its answer was lost (Temporal went
        # away): say so, rather than leave the person wondering whether it counted.
        raise _already_recorded(cp, decision)
    if refusal is not None:
        raise refused(refusal)
    if (decision == "approve_with_edits") != (edited_args is not None):
        raise Unprocessable("edited_args goes with decision approve_with_edits, and only with it.")
    workflow_id = _workflow_id(session, cp)
    return _release(session, cp), workflow_id


def _already_recorded(cp: Checkpoint, decision: str) -> Conflict:
    return Conflict(
        f"Your decision ({decision.replace('_', ' ')}) on checkpoint {cp.id} is recorded: "
        f"the checkpoint is already {cp.status.replace('_', ' ')}. There is nothing more to do."
    )


def _workflow_id(session: Session, cp: Checkpoint) -> str:
    """The id of the workflow that owns `cp`: its task's, read from the task row (same tenant)."""
    # The id alone: a task row carries its pinned definition, most of its bytes (loading it was
    # a fifth of a decision's API CPU).
    task_id = session.exec(select(Task.id).where(Task.id == cp.task_id, Task.tenant_id == cp.tenant_id)).first()
    if task_id is None:
        raise NotFound(f"No task {cp.task_id!r} in tenant {cp.tenant_id!r}.")
    return workflow_id_of(task_id)


def _release(session: Session, cp: Checkpoint) -> Checkpoint:
    """Detach `cp` (keeping what was read) and end the transaction, returning the connection."""
    session.expunge(cp)
    session.rollback()
    return cp


def _reload(session: Session, checkpoint_id: str) -> Checkpoint:
    session.expire_all()
    refreshed = session.get(Checkpoint, checkpoint_id)
    assert refreshed is not None
    return _release(session, refreshed)


async def reassign(
    session: Session,
    state: AppState,
    user: Principal,
    checkpoint_id: str,
    assignee_role: str | None,
    named: list[str] | None,
    comment: str,
) -> Checkpoint:
    cp, workflow_id, user_ids = await run_in_threadpool(
        _reassignable, session, state, user, checkpoint_id, assignee_role, named
    )
    req = ReassignRequest(
        checkpoint_id=cp.id,
        actor_id=user.user_id,
        actor_roles=list(user.roles),
        assignee_role=assignee_role,
        named_approvers=user_ids,
        comment=comment,
    )
    await _update(session, state, cp, workflow_id, REASSIGN_UPDATE_NAME, req, f"reassign-{uuid.uuid4().hex}")
    return await run_in_threadpool(_reload, session, cp.id)


def _reassignable(
    session: Session,
    state: AppState,
    user: Principal,
    checkpoint_id: str,
    assignee_role: str | None,
    named: list[str] | None,
) -> tuple[Checkpoint, str, list[str] | None]:
    cp = get_checkpoint(session, user, checkpoint_id)
    if not can(state, user, "checkpoint", "reassign"):
        raise Forbidden("Reassigning a checkpoint needs the admin role.")
    if cp.status != "open":
        raise Conflict(f"Checkpoint {cp.id} is already {cp.status}; only open checkpoints can be reassigned.")
    if assignee_role is None and named is None:
        raise Unprocessable("Give assignee_role, named_approvers or both.")
    user_ids = _members(session, user.tenant_id, named) if named is not None else None
    workflow_id = _workflow_id(session, cp)
    return _release(session, cp), workflow_id, user_ids


def add_comment(session: Session, state: AppState, user: Principal, checkpoint_id: str, body: str) -> None:
    cp = get_checkpoint(session, user, checkpoint_id)
    task = session.get(Task, cp.task_id)
    is_requester = task is not None and task.requester_id == user.user_id
    if not (is_requester or can(state, user, "checkpoint", "comment")):
        raise Forbidden("Only the task's requester, approvers and admins may comment on this checkpoint.")
    session.add(
        CheckpointComment(tenant_id=user.tenant_id, checkpoint_id=cp.id, author_id=user.user_id, body=body)
    )
    audit.record(
        session,
        tenant_id=user.tenant_id,
        task_id=cp.task_id,
        actor=f"user:{user.user_id}",
        action="checkpoint.commented",
        subject=cp.id,
        reason=body[:200],
    )
    session.commit()


def _members(session: Session, tenant_id: str, refs: list[str]) -> list[str]:
    """Resolve user ids or e-mails to ids of members of this tenant; unknown ones are an error."""
    ids: list[str] = []
    for ref in refs:
        user = session.exec(select(User).where(or_(col(User.id) == ref, col(User.email) == ref))).first()
        member = (
            user
            and session.exec(
                select(Membership).where(Membership.user_id == user.id, Membership.tenant_id == tenant_id)
            ).first()
        )
        if not user or not member:
            raise Unprocessable(f"{ref!r} is not a member of tenant {tenant_id!r}.")
        ids.append(user.id)
    return ids


async def _update(
    session: Session,
    state: AppState,
    cp: Checkpoint,
    workflow_id: str,
    name: str,
    req: Any,
    update_id: str,
    *,
    recorded: tuple[str, str] | None = None,
) -> None:
    """Send the update, waiting at most FRONTDESK_DECISION_WAIT_SECONDS for it to be recorded
    (then `Pending` when the workflow accepted it, else `NotAccepted`: see checkpoint_updates).
    `recorded` (decider id, decision): when Temporal's answer is lost but the database shows that
    decision recorded, it went through and the request succeeded."""
    client = await state.temporal_client()
    wait = state.settings.decision_wait_seconds
    try:
        await send_bounded(client, workflow_id, name, req, update_id=update_id, wait=wait)
    except (Pending, NotAccepted):
        log.warning("%s on %s not recorded within %.0f s (update %s)", name, cp.id, wait, update_id)
        raise
    except WorkflowUpdateFailedError as exc:
        refusal = _update_refusal(exc)
        if recorded is not None and isinstance(refusal, Conflict):
            # Refused because this person's own earlier request (taken by the workflow after an
            # outage, or still pending when this one was sent) is recorded: say that.
            now = await run_in_threadpool(_reload, session, cp.id)
            if await run_in_threadpool(_recorded, session, now, *recorded):
                raise _already_recorded(now, recorded[1]) from exc
        raise refusal from exc
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # The task may have ended meanwhile (a competing decision finished it, which aborts the
        # updates still queued): then this is a conflict with that decision, not an outage.
        now = await run_in_threadpool(_reload, session, cp.id)
        # Lost: the update may have gone through and only its answer is missing. Not when the
        # workflow had ended (NOT_FOUND) or Temporal refused to take the update at all (too many
        # in flight): then this request's decision certainly did not count.
        lost = not (
            isinstance(exc, RPCError) and exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.RESOURCE_EXHAUSTED)
        )
        # Not when the workflow had ended (NOT_FOUND): a competing decision won, this one did not
        # reach it, even if the same person had decided the same way.
        if lost and recorded is not None and await run_in_threadpool(_recorded, session, now, *recorded):
            log.warning("decision on %s recorded, but its answer was lost: %s", cp.id, exc)
            return
        if now.status != "open" or (isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND):
            by = f" by {now.decided_by}" if now.decided_by else ""
            raise Conflict(f"Checkpoint {cp.id} is already {now.status}{by}; the task moved on.") from exc
        raise ServiceUnavailable(f"Could not reach Temporal: {exc}") from exc


def _update_refusal(exc: WorkflowUpdateFailedError) -> ServiceError:
    cause: Any = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if not isinstance(cause, ApplicationError) or cause.type not in REFUSALS:
        # Not a refusal of the workflow's own: recording failed (a database error, whose text
        # names tables and statements). The workflow changed nothing; the detail stays in the log.
        ref = secrets.token_hex(6)
        log.error("checkpoint update failed ref=%s", ref, exc_info=exc)
        if isinstance(cause, ApplicationError) and cause.type == DATA_ERROR:
            return Unprocessable(
                "The database refused what was sent (for example a character it cannot store), so "
                f"nothing changed. Change the comment or the arguments and try again (reference {ref}).",
                extra={"reference": ref},
            )
        return ServiceUnavailable(
            "The decision could not be recorded, so nothing changed. Try again shortly; if it keeps "
            f"failing, tell an administrator (reference {ref}).",
            extra={"reference": ref},
        )
    if cause.type == FORBIDDEN:
        return Forbidden(cause.message)
    if cause.type == EDIT_REFUSED:
        return Unprocessable(cause.message, title="Edit refused")
    # CONFLICT, CHECKPOINT_NOT_OPEN (and any type added later): the checkpoint's state refuses.
    return Conflict(f"The checkpoint cannot take this decision: {cause.message}")


def current_approvers(session: Session, checkpoint_ids: list[str]) -> dict[str, set[str]]:
    """Who approved each checkpoint in its current round (every id given is a key).

    An approval with edits starts a new round and is recorded in it, so the current round is the
    latest round any approval was recorded in; earlier approvals no longer count."""
    if not checkpoint_ids:
        return {}
    rows = session.exec(
        select(
            CheckpointDecision.checkpoint_id, CheckpointDecision.round, CheckpointDecision.decider_id
        ).where(
            col(CheckpointDecision.checkpoint_id).in_(checkpoint_ids),
            col(CheckpointDecision.decision).in_(APPROVALS),
        )
    ).all()
    latest: dict[str, int] = {}
    for cp_id, rnd, _ in rows:
        latest[cp_id] = max(latest.get(cp_id, 0), rnd)
    approvers: dict[str, set[str]] = {cp_id: set() for cp_id in checkpoint_ids}
    for cp_id, rnd, decider in rows:
        if rnd == latest[cp_id]:
            approvers[cp_id].add(decider)
    return approvers


def approvals_so_far(session: Session, checkpoint_ids: list[str]) -> dict[str, int]:
    """How many distinct approvals each open checkpoint has in its current round."""
    return {cp_id: len(ids) for cp_id, ids in current_approvers(session, checkpoint_ids).items()}


def decisions_of(session: Session, user: Principal, limit: int = 200) -> list[MyDecision]:
    """The decisions this person made in this tenant, newest first, with what they decided on."""
    rows = session.exec(
        select(CheckpointDecision, Checkpoint)
        .join(Checkpoint, col(Checkpoint.id) == col(CheckpointDecision.checkpoint_id))
        .where(
            CheckpointDecision.tenant_id == user.tenant_id,
            CheckpointDecision.decider_id == user.user_id,
        )
        .order_by(col(CheckpointDecision.id).desc())
        .limit(limit)
    ).all()
    return [
        MyDecision(
            checkpoint_id=cp.id,
            task_id=cp.task_id,
            kind=cp.kind,
            tool=cp.tool,
            args=json.loads(cp.args_json),
            decision=d.decision,
            comment=d.comment,
            edited_args=json.loads(d.edited_args_json) if d.edited_args_json else None,
            checkpoint_status=cp.status,
            created_at=_utc(d.created_at),
        )
        for d, cp in rows
    ]
