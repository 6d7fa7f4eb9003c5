"""Governance inside the task workflow: kill switches, budgets and tool authorization before every
model and tool call."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        AUTHORIZE_TOOL,
        CHECK_SWITCHES,
        RAISE_BUDGET,
        RESERVE_BUDGET,
        TOOL_STEP,
        AgentSpec,
        ApprovalSpec,
        AuthorizeToolInput,
        CheckpointState,
        RaiseBudgetInput,
        ReserveInput,
        ReserveResult,
        SwitchCheckInput,
        SwitchInfo,
        TaskWorkflowInput,
        ToolCallRequest,
        ToolRunInput,
        ToolRunResult,
        ToolStepInput,
        ToolStepResult,
        run_tool,
        tool_record_id,
    )
    from workers.workflows.support import (
        PAUSE_RECHECK,
        PAUSE_RECHECK_MAX,
        RECORD_OPTS,
        TOOL_OPTS,
        Mode,
        StepOutcome,
        call,
    )

from workers.workflows.checkpoints import Checkpoints
from workers.workflows.records import TaskRecords

BUDGET_RAISE_APPROVAL = ApprovalSpec(rule_id="budget-raise", assignee_role="admin")


class Governance:
    """Asks before every model call (`reserve`) and runs every tool call (`tool_call`) under the
    switches, the budgets and the policy; a pause sets the task `waiting` (through `records`) and
    an approval or a budget raise is a checkpoint (through `checkpoints`)."""

    def __init__(
        self, inp: TaskWorkflowInput, mode: Mode, records: TaskRecords, checkpoints: Checkpoints
    ) -> None:
        self._inp = inp
        self._mode = mode
        self._records = records
        self._checkpoints = checkpoints
        self._switch_epoch = 0

    def switches_changed(self) -> None:
        """The switches-changed signal: a paused task looks again now."""
        self._switch_epoch += 1

    async def reserve(
        self, step: str, agent: AgentSpec, tier: str, request_id: str, chars: int
    ) -> StepOutcome | None:
        """Check the switches and reserve the call's worst case; None means go ahead."""
        inp = self._inp
        while True:
            reservation = ReserveInput(
                reservation_id=request_id,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                step=step,
                agent=agent.name,
                tier=tier,
                prompt_chars=chars,
                max_tokens=agent.max_tokens,
                step_limit_usd=agent.step_budget_usd,
            )
            res = await call(RESERVE_BUDGET, reservation, RECORD_OPTS)
            if res.ok:
                return None
            stop = await self.after_refusal(step, agent, res)
            if stop is not None:
                return stop

    async def after_refusal(self, step: str, agent: AgentSpec, res: ReserveResult) -> StepOutcome | None:
        """A switch or a budget refused a reservation: the step's outcome when it ends here, or
        None to ask again (a pause lifted, or a person approved a budget raise)."""
        inp = self._inp
        if res.switch is not None:
            if res.switch.mode == "stop":
                return StepOutcome("failed", error=f"stopped by {res.switch.message}")
            await self._pause(res.switch, agent=agent.name)
            return None
        breach = res.breach
        assert breach is not None
        if breach.on_breach == "stop":
            return StepOutcome("failed", error=breach.message)
        proposal = max(
            Decimal(breach.limit_usd) * 2, Decimal(breach.spent_usd) + Decimal(breach.requested_usd)
        )
        args = {
            "scope": breach.scope,
            "subject": breach.subject,
            "counter_id": breach.counter_id,
            "limit_usd": breach.limit_usd,
            "spent_usd": breach.spent_usd,
            "requested_usd": breach.requested_usd,
            "new_limit_usd": str(proposal),
        }
        state = await self._checkpoints.ask(
            kind="budget_raise",
            step=step,
            subject=f"budget:{breach.scope}",
            args=args,
            digest="",
            policy_version="",
            rule="budget-raise",
            reason=breach.message,
            approval=BUDGET_RAISE_APPROVAL.model_copy(deep=True),
        )
        if state.status != "approved":
            return StepOutcome("failed", error=f"{breach.message}; the raise was not approved")
        raised = RaiseBudgetInput(
            tenant_id=inp.tenant_id,
            task_id=inp.task_id,
            counter_id=breach.counter_id,
            new_limit_usd=str(state.args.get("new_limit_usd", proposal)),
            actor_id=state.decided_by,
        )
        await call(RAISE_BUDGET, raised, RECORD_OPTS)
        return None

    async def _pause(self, switch: SwitchInfo, agent: str | None = None, tool: str | None = None) -> None:
        """Wait while a pause switch holds (woken by a signal when switches change, or rechecking
        at a growing interval), then let the caller decide again. The status flips once each way."""
        await self._records.set_status("waiting")
        if not workflow.patched("pause-recheck-1"):  # histories from before the recheck loop
            try:
                await workflow.wait_condition(self._changed_since(self._switch_epoch), timeout=PAUSE_RECHECK)
            except TimeoutError:
                pass
            await self._records.set_status("running")
            return
        recheck = PAUSE_RECHECK
        while True:
            try:
                await workflow.wait_condition(self._changed_since(self._switch_epoch), timeout=recheck)
            except TimeoutError:
                recheck = min(recheck * 2, PAUSE_RECHECK_MAX)
            check = SwitchCheckInput(tenant_id=self._inp.tenant_id, agent=agent, tool=tool)
            checked = await call(CHECK_SWITCHES, check, RECORD_OPTS)
            if checked.switch is None or checked.switch.mode != "pause":
                break
        await self._records.set_status("running")

    def _changed_since(self, epoch: int) -> Callable[[], bool]:
        return lambda: self._switch_epoch != epoch

    async def _switch_gate(self, agent: str, tool: str) -> str | None:
        """Wait out pause switches; the message of a stop switch, or None to go ahead."""
        while True:
            check = SwitchCheckInput(tenant_id=self._inp.tenant_id, agent=agent, tool=tool)
            checked = await call(CHECK_SWITCHES, check, RECORD_OPTS)
            if checked.switch is None:
                return None
            if checked.switch.mode == "stop":
                return f"stopped by {checked.switch.message}"
            await self._pause(checked.switch, agent=agent, tool=tool)

    async def tool_call(
        self,
        agent: AgentSpec,
        step: str,
        record_prefix: str,
        turn: int,
        index: int,
        request: ToolCallRequest,
        *,
        ready: ToolStepResult | None = None,
        checkpoint_id: str = "",
    ) -> tuple[str, str | None]:
        """Authorize, maybe wait for approval, run. Returns (content for the model, rejection).
        `ready`: the model turn took this call's first step already (combined path), opening any
        approval as `checkpoint_id`."""
        inp = self._inp
        record_id = tool_record_id(inp.task_id, record_prefix, index)
        allowed = {ref.split("@", 1)[0]: ref.split("@", 1)[1] for ref in agent.tools}
        asked = AuthorizeToolInput(
            record_id=record_id,
            tool_version=allowed.get(request.name),
            task_id=inp.task_id,
            tenant_id=inp.tenant_id,
            requester_id=inp.requester_id,
            step=step,
            turn=turn,
            agent=agent.name,
            tool=request.name,
            arguments=request.arguments,
            tool_call_id=request.id,
            data_classification=inp.definition.data_classification,
            risk_class=inp.definition.risk_class,
            category=inp.definition.category,
        )
        if self._mode.combined:
            return await self._tool_step(agent, asked, ready, checkpoint_id)
        while True:
            auth = await call(AUTHORIZE_TOOL, asked, RECORD_OPTS)
            if auth.paused is None:
                break
            await self._pause(auth.paused, agent=agent.name, tool=request.name)
        if auth.effect == "deny" or auth.args is None:
            return _denied(auth.reason)
        args = auth.args
        if auth.effect == "approve":
            state = await self._checkpoints.ask(
                kind="tool_approval",
                step=step,
                subject=request.name,
                args=auth.args,
                digest=auth.args_digest,
                policy_version=auth.policy_version,
                rule=auth.rule,
                reason=auth.reason,
                approval=auth.approval or ApprovalSpec(rule_id=auth.rule_id),
                record_id=record_id,
                tool_version=allowed.get(request.name),
                agent=agent.name,
            )
            if (verdict := _unapproved(state, request.name)) is not None:
                return verdict
            args = state.args  # exactly what was approved (edited arguments included)
            # Tasks started before this check existed replay without it (their history has none).
            stopped = (
                await self._switch_gate(agent.name, request.name)
                if workflow.patched("switch-gate-1")
                else None
            )
            if stopped is not None:  # a switch flipped while the checkpoint waited
                return _denied(stopped)
        running = ToolRunInput(
            task_id=inp.task_id,
            tenant_id=inp.tenant_id,
            tool_call_record_id=record_id,
            tool=request.name,
            args=args,
            idempotency_key=record_id,
            step=step,
        )
        return _content(await call(run_tool(request.name), running, TOOL_OPTS))

    async def _tool_step(
        self, agent: AgentSpec, asked: AuthorizeToolInput, ready: ToolStepResult | None, checkpoint_id: str
    ) -> tuple[str, str | None]:
        """The combined path: authorization and the run (or the checkpoint's opening) in one round
        trip, unless the model turn took it (`ready`); after an approval, the switch check and the
        run of the approved arguments in one."""
        if ready is not None:
            return await self._after_authorize(agent, asked, ready, checkpoint_id)
        checkpoint_id = f"cp_{workflow.uuid4().hex[:20]}"
        done = await self._authorize_step(agent, asked, checkpoint_id)
        return await self._after_authorize(agent, asked, done, checkpoint_id)

    async def _authorize_step(
        self, agent: AgentSpec, asked: AuthorizeToolInput, checkpoint_id: str
    ) -> ToolStepResult:
        while True:
            self._checkpoints.expect(checkpoint_id)
            try:
                done = await call(
                    TOOL_STEP, ToolStepInput(authorize=asked, checkpoint_id=checkpoint_id), TOOL_OPTS
                )
            except BaseException:
                self._checkpoints.expect(None)
                raise
            assert done.auth is not None
            if done.auth.paused is None:
                return done
            self._checkpoints.expect(None)
            await self._pause(done.auth.paused, agent=agent.name, tool=asked.tool)

    async def _after_authorize(
        self, agent: AgentSpec, asked: AuthorizeToolInput, done: ToolStepResult, checkpoint_id: str
    ) -> tuple[str, str | None]:
        auth = done.auth
        assert auth is not None
        if not done.checkpoint_opened:
            self._checkpoints.expect(None)
            if done.run is None:
                return _denied(auth.reason)
            return _content(done.run)
        state = await self._checkpoints.wait_opened(
            checkpoint_id,
            subject=asked.tool,
            args=auth.args or {},
            approval=auth.approval or ApprovalSpec(rule_id=auth.rule_id),
            tool_version=asked.tool_version,
            agent=agent.name,
        )
        if (verdict := _unapproved(state, asked.tool)) is not None:
            return verdict
        approved = ToolRunInput(
            task_id=asked.task_id,
            tenant_id=asked.tenant_id,
            tool_call_record_id=asked.record_id,
            tool=asked.tool,
            args=state.args,  # exactly what was approved (edited arguments included)
            idempotency_key=asked.record_id,
            step=asked.step,
        )
        while True:
            done = await call(TOOL_STEP, ToolStepInput(approved=approved, agent=agent.name), TOOL_OPTS)
            if done.switch is None:
                break
            if done.switch.mode == "stop":  # a switch flipped while the checkpoint waited
                return _denied(f"stopped by {done.switch.message}")
            await self._pause(done.switch, agent=agent.name, tool=asked.tool)
        assert done.run is not None
        return _content(done.run)


def _denied(reason: str) -> tuple[str, str | None]:
    return json.dumps({"status": "denied", "error": reason}), None


def _content(run: ToolRunResult) -> tuple[str, str | None]:
    if run.ok:
        return json.dumps(run.result), None
    return json.dumps({"status": "failed", "error": run.error}), None


def _unapproved(state: CheckpointState, tool: str) -> tuple[str, str | None] | None:
    """What the model hears when a person did not approve the call; None when they did."""
    if state.status == "rejected":
        by = state.decided_by or "an approver"
        reason = f"{tool} was rejected by {by}" + (f": {state.comment}" if state.comment else "")
        return json.dumps({"status": "rejected", "comment": state.comment}), reason
    if state.status == "changes_requested":
        return json.dumps({"status": "changes_requested", "comment": state.comment}), None
    return None
