"""Checkpoints inside the task workflow: a person decides before the task goes on.

`Checkpoints.ask` opens one and waits, under its SLA with escalation, until it is decided (or
auto-rejected). The decide and reassign updates of TaskWorkflow delegate to `decide`/`reassign`
and their validators to `check_decide`/`check_reassign`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        ESCALATE_CHECKPOINT,
        OPEN_CHECKPOINT,
        REAUTHORIZE_EDIT,
        RECORD_DECISION,
        RECORD_REASSIGN,
        ApprovalSpec,
        CheckpointDecisionRecord,
        CheckpointKind,
        CheckpointOpenInput,
        CheckpointState,
        CheckpointStatus,
        DecisionKind,
        DecisionRequest,
        DecisionResult,
        EscalateInput,
        ReassignRecord,
        ReassignRequest,
        ReauthorizeInput,
        ReauthorizeResult,
        RefusalKind,
        TaskWorkflowInput,
        failures,
        why_not_decide,
    )
    from workers.workflows.support import RECORD_OPTS, Mode, call

MAX_BUDGET_USD = Decimal("1000000")

# Who-may-decide refusals, as the ApplicationError types the update answers with.
REFUSAL_TYPES: dict[RefusalKind, str] = {
    "not_open": failures.CHECKPOINT_NOT_OPEN,
    "own_task": failures.FORBIDDEN,
    "not_assigned": failures.FORBIDDEN,
    "already_approved": failures.CONFLICT,
}


class Checkpoints:
    """The task's checkpoints, kept in workflow memory while they are decided."""

    def __init__(self, inp: TaskWorkflowInput, mode: Mode) -> None:
        self._inp = inp
        self._mode = mode
        self._states: dict[str, CheckpointState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # The checkpoint a running tool step may open (combined path): its row can exist, and a
        # decision arrive, before the workflow hears back; such a decision waits for the state.
        self._expected: str | None = None

    def expect(self, checkpoint_id: str | None) -> None:
        self._expected = checkpoint_id

    # -- asking -------------------------------------------------------------------------------------
    async def ask(
        self,
        *,
        kind: CheckpointKind,
        step: str,
        subject: str,
        args: dict[str, Any],
        digest: str,
        policy_version: str,
        rule: str,
        reason: str,
        approval: ApprovalSpec,
        record_id: str | None = None,
        tool_version: str | None = None,
        agent: str = "",
    ) -> CheckpointState:
        """Open a checkpoint and wait, under its SLA, until it is decided (or auto-rejected)."""
        inp = self._inp
        checkpoint_id = f"cp_{workflow.uuid4().hex[:20]}"
        # Open for decisions before the row is written: the API shows a checkpoint once its row
        # exists, and a decision sent at that very moment must find the workflow ready.
        state = self._register(checkpoint_id, kind, subject, args, approval, tool_version, agent)
        opening = CheckpointOpenInput(
            checkpoint_id=checkpoint_id,
            kind=kind,
            task_id=inp.task_id,
            tenant_id=inp.tenant_id,
            requester_id=inp.requester_id,
            step=step,
            tool_call_record_id=record_id,
            tool=subject,
            args=args,
            args_digest=digest,
            policy_version=policy_version,
            rule=rule,
            reason=reason,
            approval=approval,
        )
        await call(OPEN_CHECKPOINT, opening, RECORD_OPTS)
        return await self._wait(state)

    async def wait_opened(
        self,
        checkpoint_id: str,
        *,
        subject: str,
        args: dict[str, Any],
        approval: ApprovalSpec,
        tool_version: str | None,
        agent: str,
    ) -> CheckpointState:
        """A tool step opened this approval checkpoint (combined path): wait, under its SLA."""
        state = self._register(checkpoint_id, "tool_approval", subject, args, approval, tool_version, agent)
        self._expected = None
        return await self._wait(state)

    def _register(
        self,
        checkpoint_id: str,
        kind: CheckpointKind,
        subject: str,
        args: dict[str, Any],
        approval: ApprovalSpec,
        tool_version: str | None,
        agent: str,
    ) -> CheckpointState:
        state = CheckpointState(
            checkpoint_id=checkpoint_id,
            kind=kind,
            tool=subject,
            tool_version=tool_version,
            agent=agent,
            args=args,
            approval=approval,
        )
        self._states[checkpoint_id] = state
        self._locks[checkpoint_id] = asyncio.Lock()
        return state

    async def _wait(self, state: CheckpointState) -> CheckpointState:
        approval = state.approval
        opened = workflow.now()
        for level, escalation in enumerate(sorted(approval.sla, key=lambda e: e.after_seconds), start=1):
            remaining = opened + timedelta(seconds=escalation.after_seconds) - workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: state.status != "open", timeout=max(remaining, timedelta(milliseconds=1))
                )
                break
            except TimeoutError:
                if escalation.action == "auto_reject":
                    await self._auto_reject(state)
                    break
                await self._escalate(state, level, escalation.add_roles)
        await workflow.wait_condition(lambda: state.status != "open")
        return state

    async def _escalate(self, state: CheckpointState, level: int, add_roles: list[str]) -> None:
        escalation = EscalateInput(
            checkpoint_id=state.checkpoint_id,
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            level=level,
            add_roles=add_roles,
            reason=f"no decision within the SLA; escalation level {level}",
        )
        await call(ESCALATE_CHECKPOINT, escalation, RECORD_OPTS)
        for role in add_roles:  # once recorded, so the inbox shows everyone who may decide
            if role not in state.extra_roles:
                state.extra_roles.append(role)

    async def _auto_reject(self, state: CheckpointState) -> None:
        async with self._locks[state.checkpoint_id]:
            if state.status != "open":
                return  # a decision landed while the timer fired
            comment = "auto-rejected: no decision within the SLA"
            await self._record_decision(state, "auto_reject", "system", comment, resolved="rejected")
            state.status, state.decided_by, state.comment = "rejected", "system", comment

    async def _record_decision(
        self,
        state: CheckpointState,
        decision: DecisionKind | Literal["auto_reject"],
        decider: str,
        comment: str,
        *,
        resolved: CheckpointStatus,
        edited: ReauthorizeResult | None = None,
        round_: int | None = None,
        needed: int | None = None,
    ) -> None:
        """Record a decision taken in round `round_` (default: the current one) under a rule
        needing `needed` approvers (default: the current number)."""
        needed = state.approval.approvers_required if needed is None else needed
        record = CheckpointDecisionRecord(
            checkpoint_id=state.checkpoint_id,
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            decision=decision,
            decider_id=decider,
            comment=comment,
            round=state.round if round_ is None else round_,
            edited_args=edited.args if edited else None,
            edit_diff=edited.diff if edited else None,
            args_digest=edited.args_digest if edited else None,
            resolved_status=resolved,
            approvers_required=needed if edited else None,
        )
        # A regular activity even on the combined path: an update's workflow task can be dropped
        # by the server (a burst of decisions aborts updates), and a local activity run in it
        # would have written a decision that the workflow never took; a scheduled one cannot.
        await call(RECORD_DECISION, record, RECORD_OPTS)

    # -- the decide update ----------------------------------------------------------------------------
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        await self._opened(req.checkpoint_id)
        state = self._known(req.checkpoint_id)
        async with self._locks[req.checkpoint_id]:  # decisions on one checkpoint are taken in turn
            self._check_decision(state, req)  # again: the state may have moved while we queued
            # Worked out on the side and applied only once the decision is recorded: if recording
            # fails, the checkpoint stays exactly as the database and the inbox show it.
            edited: ReauthorizeResult | None = None
            round_, prior, needed = state.round, state.approvals, state.approval.approvers_required
            if req.decision == "approve_with_edits":
                edited = await self._reauthorize(state, req.edited_args or {})
                round_, prior = round_ + 1, []
                if edited.approval is not None:
                    # Edited arguments that a stricter rule covers need that rule's approvers.
                    needed = max(needed, edited.approval.approvers_required)
            resolved: CheckpointStatus
            if req.decision in ("approve", "approve_with_edits"):
                approvals = [*prior, req.decider_id]
                resolved = "approved" if len(approvals) >= needed else "open"
            else:
                approvals = prior
                resolved = "rejected" if req.decision == "reject" else "changes_requested"
            await self._record_decision(
                state,
                req.decision,
                req.decider_id,
                req.comment,
                resolved=resolved,
                edited=edited,
                round_=round_,
                needed=needed,
            )
            state.round, state.approval.approvers_required = round_, needed
            if edited is not None and edited.args is not None:
                state.args = edited.args
            state.approvals = approvals
            if resolved != "open":
                state.status, state.decided_by, state.comment = resolved, req.decider_id, req.comment
            return DecisionResult(
                checkpoint_id=state.checkpoint_id,
                decision=req.decision,
                decider_id=req.decider_id,
                status=state.status,
                approvals=len(state.approvals),
                approvals_required=state.approval.approvers_required,
            )

    def check_decide(self, req: DecisionRequest) -> None:
        """The decide validator: refuse at once what `decide` would refuse."""
        if self._awaited(req.checkpoint_id):
            return  # `decide` checks once the state is known
        self._check_decision(self._known(req.checkpoint_id), req)

    def _awaited(self, checkpoint_id: str) -> bool:
        return checkpoint_id not in self._states and checkpoint_id == self._expected

    async def _opened(self, checkpoint_id: str) -> None:
        """A decision on the checkpoint a tool step is opening waits until the step is back."""
        if self._awaited(checkpoint_id):
            await workflow.wait_condition(lambda: not self._awaited(checkpoint_id))

    def _known(self, checkpoint_id: str) -> CheckpointState:
        state = self._states.get(checkpoint_id)
        if state is None:
            raise ApplicationError(
                "this checkpoint is not open on this task", type=failures.CHECKPOINT_NOT_OPEN
            )
        return state

    def _check_decision(self, state: CheckpointState, req: DecisionRequest) -> None:
        refused = why_not_decide(
            status=state.status,
            requester_id=self._inp.requester_id,
            assignee_roles={state.approval.assignee_role, *state.extra_roles},
            named_approvers=state.approval.named_approvers,
            approved_by=state.approvals,
            decider_id=req.decider_id,
            decider_roles=req.decider_roles,
        )
        if refused is not None:
            raise ApplicationError(refused.message, type=REFUSAL_TYPES[refused.kind])
        if req.decision == "approve_with_edits":
            if state.kind not in ("tool_approval", "budget_raise"):
                raise ApplicationError(
                    f"a {state.kind} checkpoint cannot be edited", type=failures.EDIT_REFUSED
                )
            if not req.edited_args:
                raise ApplicationError("approve_with_edits needs edited_args", type=failures.EDIT_REFUSED)

    async def _reauthorize(self, state: CheckpointState, edited: dict[str, Any]) -> ReauthorizeResult:
        if state.kind == "budget_raise":
            return _budget_edit(state, edited)
        definition = self._inp.definition
        request = ReauthorizeInput(
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            agent=state.agent,
            tool=state.tool,
            tool_version=state.tool_version or "",
            original_args=state.args,
            edited_args=edited,
            data_classification=definition.data_classification,
            risk_class=definition.risk_class,
            category=definition.category,
        )
        result = await call(REAUTHORIZE_EDIT, request, RECORD_OPTS)
        if not result.ok:
            raise ApplicationError(result.reason, type=failures.EDIT_REFUSED)
        return result

    # -- the reassign update --------------------------------------------------------------------------
    async def reassign(self, req: ReassignRequest) -> DecisionResult:
        await self._opened(req.checkpoint_id)
        self.check_reassign(req)
        state = self._states[req.checkpoint_id]
        role = req.assignee_role or state.approval.assignee_role
        named = state.approval.named_approvers if req.named_approvers is None else list(req.named_approvers)
        record = ReassignRecord(
            checkpoint_id=state.checkpoint_id,
            task_id=self._inp.task_id,
            tenant_id=self._inp.tenant_id,
            actor_id=req.actor_id,
            assignee_role=role,
            named_approvers=named,
            comment=req.comment,
        )
        await call(RECORD_REASSIGN, record, RECORD_OPTS)
        # Only now: a reassignment the database refused must not move who may decide.
        state.approval.assignee_role, state.approval.named_approvers = role, named
        return DecisionResult(
            checkpoint_id=state.checkpoint_id,
            decision="approve",
            decider_id=req.actor_id,
            status=state.status,
        )

    def check_reassign(self, req: ReassignRequest) -> None:
        """The reassign validator."""
        if self._awaited(req.checkpoint_id):
            return  # `reassign` checks once the state is known
        state = self._states.get(req.checkpoint_id)
        if state is None or state.status != "open":
            raise ApplicationError(
                "this checkpoint is not open on this task", type=failures.CHECKPOINT_NOT_OPEN
            )
        if "admin" not in req.actor_roles:
            raise ApplicationError("reassigning needs the admin role", type=failures.FORBIDDEN)
        if req.named_approvers and self._inp.requester_id in req.named_approvers:
            raise ApplicationError(
                "the requester cannot be named an approver of their own task", type=failures.FORBIDDEN
            )


def _budget_edit(state: CheckpointState, edited: dict[str, Any]) -> ReauthorizeResult:
    """A budget raise may only change `new_limit_usd`, to a positive amount above the old limit."""
    if set(edited) != {"new_limit_usd"}:
        return _refuse("only new_limit_usd can be edited on a budget raise")
    try:
        new_limit = Decimal(str(edited["new_limit_usd"]))
    except ArithmeticError:
        return _refuse("new_limit_usd must be a number")
    if not new_limit.is_finite() or new_limit <= Decimal(str(state.args["limit_usd"])):
        return _refuse(f"new_limit_usd must be above the current limit of {state.args['limit_usd']}")
    if new_limit > MAX_BUDGET_USD:
        return _refuse(f"new_limit_usd must be at most {MAX_BUDGET_USD}")
    args = {**state.args, "new_limit_usd": str(new_limit)}
    diff = {"new_limit_usd": {"from": state.args.get("new_limit_usd"), "to": str(new_limit)}}
    return ReauthorizeResult(ok=True, reason="budget raise edited", args=args, diff=diff, effect="approve")


def _refuse(reason: str) -> ReauthorizeResult:
    raise ApplicationError(reason, type=failures.EDIT_REFUSED)
