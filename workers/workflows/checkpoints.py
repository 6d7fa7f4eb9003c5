"""Checkpoints inside the task workflow: opening, SLA escalation, and the decide and reassign
updates with their validators (mixed into TaskWorkflow)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        DECIDE_UPDATE_NAME,
        REASSIGN_UPDATE_NAME,
        Ack,
        ApprovalSpec,
        CheckpointDecisionRecord,
        CheckpointKind,
        CheckpointOpenInput,
        CheckpointState,
        DecisionRequest,
        DecisionResult,
        EscalateInput,
        ReassignRecord,
        ReassignRequest,
        ReauthorizeInput,
        ReauthorizeResult,
    )
    from workers.workflows.support import (
        RECORD_OPTS,
    )

from workers.workflows.base import TaskState

MAX_BUDGET_USD = Decimal("1000000")


class Checkpoints(TaskState):
    # -- checkpoints ----------------------------------------------------------------------------------
    async def _checkpoint(
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
        inp = self.inp
        checkpoint_id = f"cp_{workflow.uuid4().hex[:20]}"
        state = CheckpointState(
            checkpoint_id=checkpoint_id,
            kind=kind,
            tool=subject,
            tool_version=tool_version,
            agent=agent,
            args=args,
            approval=approval,
        )
        # Open for decisions before the row is written: the API shows a checkpoint once its row
        # exists, and a decision sent at that very moment must find the workflow ready.
        self._checkpoints[checkpoint_id] = state
        self._locks[checkpoint_id] = asyncio.Lock()
        await workflow.execute_activity(
            "checkpoint.open",
            CheckpointOpenInput(
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
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )
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
        for role in add_roles:
            if role not in state.extra_roles:
                state.extra_roles.append(role)
        await workflow.execute_activity(
            "checkpoint.escalate",
            EscalateInput(
                checkpoint_id=state.checkpoint_id,
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                level=level,
                add_roles=add_roles,
                reason=f"no decision within the SLA; escalation level {level}",
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )

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
        decision: str,
        decider: str,
        comment: str,
        *,
        resolved: str,
        edited: ReauthorizeResult | None = None,
    ) -> None:
        await workflow.execute_activity(
            "checkpoint.record_decision",
            CheckpointDecisionRecord(
                checkpoint_id=state.checkpoint_id,
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                decision=decision,  # type: ignore[arg-type]
                decider_id=decider,
                comment=comment,
                round=state.round,
                edited_args=edited.args if edited else None,
                edit_diff=edited.diff if edited else None,
                args_digest=edited.args_digest if edited else None,
                resolved_status=resolved,  # type: ignore[arg-type]
                approvers_required=state.approval.approvers_required if edited else None,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )

    @workflow.update(name=DECIDE_UPDATE_NAME)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        state = self._checkpoints.get(req.checkpoint_id)
        if state is None:
            raise ApplicationError("this checkpoint is not open on this task", type="CheckpointNotOpen")
        async with self._locks[req.checkpoint_id]:  # decisions on one checkpoint are taken in turn
            self._check_decision(state, req)  # again: the state may have moved while we queued
            edited: ReauthorizeResult | None = None
            if req.decision == "approve_with_edits":
                edited = await self._reauthorize(state, req.edited_args or {})
                state.round += 1
                state.approvals = []
                if edited.approval is not None:
                    # Edited arguments that a stricter rule covers need that rule's approvers.
                    needed = max(state.approval.approvers_required, edited.approval.approvers_required)
                    state.approval.approvers_required = needed
            if req.decision in ("approve", "approve_with_edits"):
                approvals = [*state.approvals, req.decider_id]
                resolved = "approved" if len(approvals) >= state.approval.approvers_required else "open"
            else:
                approvals = state.approvals
                resolved = "rejected" if req.decision == "reject" else "changes_requested"
            await self._record_decision(
                state, req.decision, req.decider_id, req.comment, resolved=resolved, edited=edited
            )
            if edited is not None and edited.args is not None:
                state.args = edited.args
            state.approvals = approvals
            if resolved != "open":
                state.status, state.decided_by, state.comment = resolved, req.decider_id, req.comment  # type: ignore[assignment]
            return DecisionResult(
                checkpoint_id=state.checkpoint_id,
                decision=req.decision,
                decider_id=req.decider_id,
                status=state.status,
                approvals=len(state.approvals),
                approvals_required=state.approval.approvers_required,
            )

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        state = self._checkpoints.get(req.checkpoint_id)
        if state is None:
            raise ApplicationError("this checkpoint is not open on this task", type="CheckpointNotOpen")
        self._check_decision(state, req)

    def _check_decision(self, state: CheckpointState, req: DecisionRequest) -> None:
        if state.status != "open":
            raise ApplicationError(f"this checkpoint is already {state.status}", type="CheckpointNotOpen")
        if req.decider_id == self.inp.requester_id:
            raise ApplicationError(
                "the requester cannot decide a checkpoint of their own task", type="Forbidden"
            )
        roles = {state.approval.assignee_role, *state.extra_roles}
        if not (roles & set(req.decider_roles) or req.decider_id in state.approval.named_approvers):
            raise ApplicationError(
                f"deciding needs one of the roles: {', '.join(sorted(roles))}", type="Forbidden"
            )
        if req.decider_id in state.approvals:
            raise ApplicationError(
                "you already approved this checkpoint; another approver must", type="Conflict"
            )
        if req.decision == "approve_with_edits":
            if state.kind not in ("tool_approval", "budget_raise"):
                raise ApplicationError(f"a {state.kind} checkpoint cannot be edited", type="EditRefused")
            if not req.edited_args:
                raise ApplicationError("approve_with_edits needs edited_args", type="EditRefused")

    async def _reauthorize(self, state: CheckpointState, edited: dict[str, Any]) -> ReauthorizeResult:
        if state.kind == "budget_raise":
            return _budget_edit(state, edited)
        result: ReauthorizeResult = await workflow.execute_activity(
            "checkpoint.reauthorize",
            ReauthorizeInput(
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                agent=state.agent,
                tool=state.tool,
                tool_version=state.tool_version or "",
                original_args=state.args,
                edited_args=edited,
                data_classification=self.inp.definition.data_classification,
                risk_class=self.inp.definition.risk_class,
                category=self.inp.definition.category,
            ),
            result_type=ReauthorizeResult,
            **RECORD_OPTS,
        )
        if not result.ok:
            raise ApplicationError(result.reason, type="EditRefused")
        return result

    @workflow.update(name=REASSIGN_UPDATE_NAME)
    async def reassign(self, req: ReassignRequest) -> DecisionResult:
        state = self._checkpoints[req.checkpoint_id]
        if req.assignee_role:
            state.approval.assignee_role = req.assignee_role
        if req.named_approvers is not None:
            state.approval.named_approvers = list(req.named_approvers)
        await workflow.execute_activity(
            "checkpoint.record_reassign",
            ReassignRecord(
                checkpoint_id=state.checkpoint_id,
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                actor_id=req.actor_id,
                assignee_role=state.approval.assignee_role,
                named_approvers=state.approval.named_approvers,
                comment=req.comment,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )
        return DecisionResult(
            checkpoint_id=state.checkpoint_id,
            decision="approve",
            decider_id=req.actor_id,
            status=state.status,
        )

    @reassign.validator
    def _validate_reassign(self, req: ReassignRequest) -> None:
        state = self._checkpoints.get(req.checkpoint_id)
        if state is None or state.status != "open":
            raise ApplicationError("this checkpoint is not open on this task", type="CheckpointNotOpen")
        if "admin" not in req.actor_roles:
            raise ApplicationError("reassigning needs the admin role", type="Forbidden")
        if req.named_approvers and self.inp.requester_id in req.named_approvers:
            raise ApplicationError(
                "the requester cannot be named an approver of their own task", type="Forbidden"
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
    raise ApplicationError(reason, type="EditRefused")
