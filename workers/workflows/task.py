"""The task workflow: runs the pinned steps of a workflow definition under governance.

An agent step is the agent loop. Each turn: check kill switches and reserve the worst case of
the call on every budget -> model call (through the router; the activity settles the real cost)
-> for each tool call the model asks for: authorize (policy engine) -> a checkpoint if policy says
so, decided through validated updates, under an SLA with escalation -> tool activity (idempotent
by key) -> result back to the model, until a final answer or a turn limit. The final answer is
validated against the agent's output model, with one repair turn.

Deterministic by construction: no I/O, clocks or randomness here; ids come from the task id and
the position in the loop, or `workflow.uuid4()`; time is `workflow.now()`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from workers.domain import (
        DECIDE_UPDATE_NAME,
        REASSIGN_UPDATE_NAME,
        SWITCHES_CHANGED_SIGNAL,
        TASK_WORKFLOW_NAME,
        Ack,
        AgentSpec,
        ApprovalSpec,
        AuthorizeToolInput,
        AuthorizeToolResult,
        ChatMessage,
        CheckpointDecisionRecord,
        CheckpointKind,
        CheckpointOpenInput,
        CheckpointState,
        DecisionRequest,
        DecisionResult,
        EscalateInput,
        ModelCallInput,
        ModelCallResult,
        Plan,
        RaiseBudgetInput,
        ReassignRecord,
        ReassignRequest,
        ReauthorizeInput,
        ReauthorizeResult,
        ReleaseInput,
        ReserveInput,
        ReserveResult,
        RoutingFacts,
        StepRecord,
        StepSpec,
        SwitchCheckInput,
        SwitchCheckResult,
        SwitchInfo,
        TaskStatusUpdate,
        TaskWorkflowInput,
        TaskWorkflowResult,
        ToolCallRequest,
        ToolRunInput,
        ToolRunResult,
        ValidateOutputInput,
        ValidateOutputResult,
        ValidatePlanInput,
        ValidatePlanResult,
    )
    from workers.workflows.support import (
        MODEL_OPTS,
        PAUSE_RECHECK,
        PAUSE_RECHECK_MAX,
        RECORD_OPTS,
        REPAIR_PREFIX,
        TOOL_OPTS,
        StepOutcome,
        holds,
        judge_accepts,
        opening_messages,
        prompt_chars,
        reason_of,
        refusal,
        render,
        repair_message,
    )

MAX_BUDGET_USD = Decimal("1000000")
BUDGET_RAISE_APPROVAL = ApprovalSpec(rule_id="budget-raise", assignee_role="admin")


@workflow.defn(name=TASK_WORKFLOW_NAME)
class TaskWorkflow:
    def __init__(self) -> None:
        self._inp: TaskWorkflowInput | None = None
        self._checkpoints: dict[str, CheckpointState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._switch_epoch = 0
        self._turns = 0
        self._step_index = 0

    @property
    def inp(self) -> TaskWorkflowInput:
        assert self._inp is not None
        return self._inp

    @workflow.run
    async def run(self, inp: TaskWorkflowInput) -> TaskWorkflowResult:
        self._inp = inp
        try:
            await self._status("running")
            result = await self._run_steps()
        except BaseException as exc:
            # A cancel surfaces as CancelledError, or as an ActivityError caused by one when it
            # lands on a pending activity; either way the task ends `cancelled`, never unknown.
            if is_cancelled_exception(exc):
                await self._finish(TaskWorkflowResult(status="cancelled", error="cancelled on request"))
            raise
        await self._finish(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _run_steps(self) -> TaskWorkflowResult:
        outputs: dict[str, Any] = {}
        last: dict[str, Any] | None = None
        escalated = False
        for step in self.inp.definition.steps:
            index = self._next_index()
            if not holds(step.when, outputs, self.inp):
                await self._record_step(index, step, "skipped", kind=step.kind)
                continue
            await self._record_step(index, step, "running", kind=step.kind)
            try:
                outcome = await self._step(step, outputs, last)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                outcome = StepOutcome("failed", error=reason_of(err))
            await self._record_step(
                index, step, outcome.status, outcome.output, outcome.error,
                kind=step.kind, rung=outcome.rung, tier=outcome.tier,
            )  # fmt: skip
            escalated = escalated or outcome.escalated
            if outcome.status == "rejected":
                return TaskWorkflowResult(
                    status="rejected", outcome="unresolved", output=outcome.output, error=outcome.error
                )
            if outcome.status != "completed":
                reason = f"step {step.name!r} {outcome.status.replace('_', ' ')}: {outcome.error}"
                return TaskWorkflowResult(status="failed", outcome="unresolved", error=reason)
            outputs[step.name] = outcome.output
            last = outcome.output
        return TaskWorkflowResult(
            status="completed", outcome="escalated" if escalated else "resolved", output=last
        )

    def _next_index(self) -> int:
        self._step_index += 1
        return self._step_index - 1

    async def _step(
        self, step: StepSpec, outputs: dict[str, Any], last: dict[str, Any] | None
    ) -> StepOutcome:
        if step.kind == "agent":
            return await self._agent_step(step.name, self.inp.definition.agents[step.agent], outputs)
        if step.kind == "tool":
            return await self._tool_step(step, outputs)
        if step.kind == "checkpoint":
            return await self._review_step(step, last)
        return await self._planner_step(step, outputs)

    # -- the agent step: an escalation ladder of agent loops ------------------------------------------
    async def _agent_step(
        self,
        name: str,
        agent: AgentSpec,
        outputs: dict[str, Any],
        assignment: str | None = None,
        note: str | None = None,
    ) -> StepOutcome:
        outcome = StepOutcome("failed", error="the agent has no tier")
        for rung, tier in enumerate(agent.ladder, start=1):
            outcome = await self._agent_loop(name, agent, tier, rung, outputs, assignment, note)
            outcome.rung, outcome.tier = rung, tier
            if outcome.status != "completed":
                return outcome
            accepted, why = await self._accepted(
                name if rung == 1 else f"{name}/r{rung}", agent, outcome.output, outputs
            )
            if accepted:
                return outcome
            note = f"An earlier attempt was not accepted ({why}). Answer again, carefully."
        if agent.validator is None:
            return outcome
        return await self._output_review(name, agent, outcome, note or "")

    async def _accepted(
        self, name: str, agent: AgentSpec, output: dict[str, Any] | None, outputs: dict[str, Any]
    ) -> tuple[bool, str]:
        validator = agent.validator
        if validator is None or validator.kind == "output_model":
            return True, ""
        if validator.kind == "confidence":
            value = (output or {}).get(validator.field)
            ok = isinstance(value, int | float) and value >= validator.threshold
            return ok, f"{validator.field} {value!r} is below {validator.threshold}"
        judge = self.inp.definition.agents[validator.judge_agent or ""]
        verdict = await self._agent_step(f"{name}.judge", judge, {**outputs, name: output or {}})
        return judge_accepts(verdict.output if verdict.status == "completed" else None)

    async def _output_review(
        self, name: str, agent: AgentSpec, outcome: StepOutcome, why: str
    ) -> StepOutcome:
        """The last rung's answer was not accepted either: a person decides."""
        state = await self._checkpoint(
            kind="output_review",
            step=name,
            subject=f"output:{agent.name}",
            args={"output": outcome.output, "tier": outcome.tier},
            digest="",
            policy_version="",
            rule="escalation-ladder",
            reason=f"{agent.name} could not produce an accepted answer on any tier: {why}",
            approval=ApprovalSpec(rule_id="output-review", assignee_role=agent.review_role),
        )
        if state.status == "approved":
            return StepOutcome(
                "completed", output=outcome.output, rung=outcome.rung, tier=outcome.tier, escalated=True
            )
        return StepOutcome(
            "rejected",
            output=outcome.output,
            error=refusal("the answer", state.status, state.decided_by, state.comment),
        )

    async def _agent_loop(
        self,
        name: str,
        agent: AgentSpec,
        tier: str,
        rung: int,
        outputs: dict[str, Any],
        assignment: str | None,
        note: str | None,
    ) -> StepOutcome:
        inp = self.inp
        facts = RoutingFacts(
            tenant_id=inp.tenant_id,
            requester_id=inp.requester_id,
            task_id=inp.task_id,
            step=name,
            agent=agent.name,
            category=inp.definition.category,
            risk_class=inp.definition.risk_class,
            data_classification=inp.definition.data_classification,
        )
        messages = opening_messages(agent, inp, outputs, assignment=assignment, note=note)
        tools = [inp.definition.tools[ref.split("@", 1)[0]] for ref in agent.tools]
        key = name if rung == 1 else f"{name}/r{rung}"  # ids stay unique across rungs
        rejection: str | None = None
        repaired = False
        for turn in range(1, agent.max_turns + 1):
            if self._turns >= inp.definition.max_task_turns:
                limit = inp.definition.max_task_turns
                return StepOutcome("limit_reached", error=f"the task used all {limit} model turns it may use")
            self._turns += 1
            request_id = f"{inp.task_id}/{key}/{turn}"
            stop = await self._reserve(name, agent, tier, request_id, prompt_chars(messages, tools))
            if stop is not None:
                return stop
            reply = await self._model_call(
                ModelCallInput(
                    facts=facts,
                    turn=turn,
                    request_id=request_id,
                    tier=tier,
                    messages=messages,
                    tools=tools,
                    output_schema=agent.output_schema,
                    max_tokens=agent.max_tokens,
                    reservation_id=request_id,
                )
            )
            messages.append(reply.message)
            if reply.message.tool_calls:
                for index, call in enumerate(reply.message.tool_calls):
                    content, rejected = await self._tool_call(agent, name, f"{key}:{turn}", turn, index, call)
                    rejection = rejected or rejection
                    messages.append(ChatMessage(role="tool", tool_call_id=call.id, content=content))
                continue
            checked: ValidateOutputResult = await workflow.execute_activity(
                "agent.validate_output",
                ValidateOutputInput(output_model=agent.output_model, text=reply.message.content or ""),
                result_type=ValidateOutputResult,
                **RECORD_OPTS,
            )
            if checked.ok:
                if rejection:
                    return StepOutcome("rejected", output=checked.data, error=rejection)
                return StepOutcome("completed", output=checked.data)
            if repaired:
                return StepOutcome(
                    "failed",
                    error=f"the final answer did not match {agent.output_model} "
                    f"after one repair turn: {checked.errors}",
                )
            repaired = True
            messages.append(repair_message(checked.errors))
        return StepOutcome(
            "limit_reached",
            error=f"agent {agent.name} used all {agent.max_turns} turns without a valid final answer",
        )

    async def _model_call(self, call: ModelCallInput) -> ModelCallResult:
        """The call settles its reservation itself; if it never ran to the end (cancelled, or failed
        for any other reason than the router's answer), the worst case reserved is given back."""
        try:
            result: ModelCallResult = await workflow.execute_activity(
                "model.call", call, result_type=ModelCallResult, **MODEL_OPTS
            )
            return result
        except BaseException:
            if not workflow.patched("release-on-failure-1"):
                raise  # a history from before reservations were released on failure
            await workflow.execute_activity(
                "budget.release", ReleaseInput(reservation_id=call.request_id), result_type=Ack, **RECORD_OPTS
            )
            raise

    # -- tool, checkpoint and planner steps ---------------------------------------------------------------
    async def _tool_step(self, step: StepSpec, outputs: dict[str, Any]) -> StepOutcome:
        """A tool the definition calls itself, authorized like any tool call (agent `workflow:<name>`)."""
        name = step.tool.partition("@")[0]
        args = render(step.args, outputs, self.inp)
        caller = AgentSpec(
            name=f"workflow:{self.inp.definition.name}",
            version=self.inp.definition.version,
            instructions="",
            tier="",
            tools=[step.tool],
            output_model="",
            output_schema={},
        )
        call = ToolCallRequest(id=f"step-{step.name}", name=name, arguments=json.dumps(args, sort_keys=True))
        content, rejected = await self._tool_call(caller, step.name, f"{step.name}:0", 0, 0, call)
        result = json.loads(content)
        if rejected:
            return StepOutcome("rejected", output=result, error=rejected)
        if result.get("status") in ("denied", "failed", "changes_requested"):
            why = result.get("error") or result.get("comment") or result["status"]
            return StepOutcome("failed", output=result, error=f"tool {step.tool} did not run: {why}")
        return StepOutcome("completed", output=result)

    async def _review_step(self, step: StepSpec, last: dict[str, Any] | None) -> StepOutcome:
        """A person reviews the previous step's output before the task goes on."""
        state = await self._checkpoint(
            kind=step.review,
            step=step.name,
            subject=f"review:{step.name}",
            args={"output": last},
            digest="",
            policy_version="",
            rule=f"workflow:{self.inp.definition.ref}",
            reason=f"the workflow asks a person ({step.assignee_role}) to review before it goes on",
            approval=ApprovalSpec(rule_id=f"review-{step.name}", assignee_role=step.assignee_role),
        )
        if state.status == "approved":
            return StepOutcome("completed", output=last)
        return StepOutcome(
            "rejected",
            output=last,
            error=refusal(
                f"the {step.review.replace('_', ' ')}", state.status, state.decided_by, state.comment
            ),
        )

    async def _planner_step(self, step: StepSpec, outputs: dict[str, Any]) -> StepOutcome:
        """The planner proposes a plan of registered agents; it is validated (one repair turn),
        optionally reviewed by a person, then run step by step."""
        planner = self.inp.definition.agents[step.agent]
        note: str | None = None
        plan: Plan | None = None
        for attempt in (1, 2):
            name = step.name if attempt == 1 else f"{step.name}/repair"
            proposed = await self._agent_step(name, planner, outputs, note=note)
            if proposed.status != "completed":
                return proposed
            checked: ValidatePlanResult = await workflow.execute_activity(
                "plan.validate",
                ValidatePlanInput(
                    tenant_id=self.inp.tenant_id,
                    plan=proposed.output or {},
                    planner_agents=step.planner_agents,
                    agents={
                        ref.split("@", 1)[0]: self.inp.definition.agents[ref]
                        for ref in step.planner_agents
                        if ref in self.inp.definition.agents
                    },
                ),
                result_type=ValidatePlanResult,
                **RECORD_OPTS,
            )
            if checked.ok:
                plan = checked.plan
                break
            note = (
                f"{REPAIR_PREFIX}: the plan was refused: {'; '.join(checked.problems)}. Propose a valid plan."
            )
        if plan is None:
            return StepOutcome("failed", error=f"the plan was refused after one repair turn: {note}")
        if step.require_plan_review:
            review = await self._review_step(
                StepSpec(
                    name=f"{step.name}.review",
                    kind="checkpoint",
                    review="plan_review",
                    assignee_role=step.assignee_role,
                ),
                plan.model_dump(),
            )
            if review.status != "completed":
                return review
        results: dict[str, Any] = {}
        last: dict[str, Any] | None = None
        for planned in plan.steps:
            name = f"{step.name}.{planned.name}"
            index = self._next_index()
            sub = StepSpec(name=name, agent=planned.agent)
            await self._record_step(index, sub, "running")
            agent = self.inp.definition.agents[planned.agent]
            outcome = await self._agent_step(
                name, agent, {**outputs, **results}, assignment=planned.instructions
            )
            await self._record_step(
                index,
                sub,
                outcome.status,
                outcome.output,
                outcome.error,
                rung=outcome.rung,
                tier=outcome.tier,
            )
            if outcome.status != "completed":
                return outcome
            results[planned.name] = outcome.output
            last = outcome.output
        return StepOutcome("completed", output={"plan": plan.model_dump(), "results": results, "final": last})

    async def _reserve(
        self, step: str, agent: AgentSpec, tier: str, request_id: str, chars: int
    ) -> StepOutcome | None:
        """Check the switches and reserve the call's worst case; None means go ahead."""
        inp = self.inp
        while True:
            res: ReserveResult = await workflow.execute_activity(
                "budget.reserve",
                ReserveInput(
                    reservation_id=request_id,
                    tenant_id=inp.tenant_id,
                    task_id=inp.task_id,
                    step=step,
                    agent=agent.name,
                    tier=tier,
                    prompt_chars=chars,
                    max_tokens=agent.max_tokens,
                    step_limit_usd=agent.step_budget_usd,
                ),
                result_type=ReserveResult,
                **RECORD_OPTS,
            )
            if res.ok:
                return None
            if res.switch is not None:
                if res.switch.mode == "stop":
                    return StepOutcome("failed", error=f"stopped by {res.switch.message}")
                await self._pause(res.switch, agent=agent.name)
                continue
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
            state = await self._checkpoint(
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
            await workflow.execute_activity(
                "budget.raise",
                RaiseBudgetInput(
                    tenant_id=inp.tenant_id,
                    task_id=inp.task_id,
                    counter_id=breach.counter_id,
                    new_limit_usd=str(state.args.get("new_limit_usd", proposal)),
                    actor_id=state.decided_by,
                ),
                result_type=Ack,
                **RECORD_OPTS,
            )

    async def _pause(self, switch: SwitchInfo, agent: str | None = None, tool: str | None = None) -> None:
        """Wait while a pause switch holds (woken by a signal when switches change, or rechecking
        at a growing interval), then let the caller decide again. The status flips once each way."""
        await self._status("waiting")
        if not workflow.patched("pause-recheck-1"):  # histories from before the recheck loop
            epoch = self._switch_epoch
            try:
                await workflow.wait_condition(lambda: self._switch_epoch != epoch, timeout=PAUSE_RECHECK)
            except TimeoutError:
                pass
            await self._status("running")
            return
        recheck = PAUSE_RECHECK
        while True:
            epoch = self._switch_epoch
            try:
                await workflow.wait_condition(lambda e=epoch: self._switch_epoch != e, timeout=recheck)
            except TimeoutError:
                recheck = min(recheck * 2, PAUSE_RECHECK_MAX)
            checked: SwitchCheckResult = await workflow.execute_activity(
                "switch.check",
                SwitchCheckInput(tenant_id=self.inp.tenant_id, agent=agent, tool=tool),
                result_type=SwitchCheckResult,
                **RECORD_OPTS,
            )
            if checked.switch is None or checked.switch.mode != "pause":
                break
        await self._status("running")

    async def _switch_gate(self, agent: str, tool: str) -> str | None:
        """Wait out pause switches; the message of a stop switch, or None to go ahead."""
        while True:
            checked: SwitchCheckResult = await workflow.execute_activity(
                "switch.check",
                SwitchCheckInput(tenant_id=self.inp.tenant_id, agent=agent, tool=tool),
                result_type=SwitchCheckResult,
                **RECORD_OPTS,
            )
            if checked.switch is None:
                return None
            if checked.switch.mode == "stop":
                return f"stopped by {checked.switch.message}"
            await self._pause(checked.switch, agent=agent, tool=tool)

    async def _tool_call(
        self, agent: AgentSpec, step: str, record_prefix: str, turn: int, index: int, call: ToolCallRequest
    ) -> tuple[str, str | None]:
        """Authorize, maybe wait for approval, run. Returns (content for the model, rejection)."""
        inp = self.inp
        record_id = f"{inp.task_id}:{record_prefix}:{index}"
        allowed = {ref.split("@", 1)[0]: ref.split("@", 1)[1] for ref in agent.tools}
        while True:
            auth: AuthorizeToolResult = await workflow.execute_activity(
                "policy.authorize_tool",
                AuthorizeToolInput(
                    record_id=record_id,
                    tool_version=allowed.get(call.name),
                    task_id=inp.task_id,
                    tenant_id=inp.tenant_id,
                    requester_id=inp.requester_id,
                    step=step,
                    turn=turn,
                    agent=agent.name,
                    tool=call.name,
                    arguments=call.arguments,
                    tool_call_id=call.id,
                    data_classification=inp.definition.data_classification,
                    risk_class=inp.definition.risk_class,
                    category=inp.definition.category,
                ),
                result_type=AuthorizeToolResult,
                **RECORD_OPTS,
            )
            if auth.paused is None:
                break
            await self._pause(auth.paused, agent=agent.name, tool=call.name)
        if auth.effect == "deny" or auth.args is None:
            return json.dumps({"status": "denied", "error": auth.reason}), None
        args = auth.args
        if auth.effect == "approve":
            state = await self._checkpoint(
                kind="tool_approval",
                step=step,
                subject=call.name,
                args=auth.args,
                digest=auth.args_digest,
                policy_version=auth.policy_version,
                rule=auth.rule,
                reason=auth.reason,
                approval=auth.approval or ApprovalSpec(rule_id=auth.rule_id),
                record_id=record_id,
                tool_version=allowed.get(call.name),
                agent=agent.name,
            )
            if state.status == "rejected":
                by = state.decided_by or "an approver"
                reason = f"{call.name} was rejected by {by}" + (f": {state.comment}" if state.comment else "")
                return json.dumps({"status": "rejected", "comment": state.comment}), reason
            if state.status == "changes_requested":
                return json.dumps({"status": "changes_requested", "comment": state.comment}), None
            args = state.args  # exactly what was approved (edited arguments included)
            # Tasks started before this check existed replay without it (their history has none).
            stopped = (
                await self._switch_gate(agent.name, call.name) if workflow.patched("switch-gate-1") else None
            )
            if stopped is not None:  # a switch flipped while the checkpoint waited
                return json.dumps({"status": "denied", "error": stopped}), None
        run: ToolRunResult = await workflow.execute_activity(
            f"tool__{call.name}__call",
            ToolRunInput(
                task_id=inp.task_id,
                tenant_id=inp.tenant_id,
                tool_call_record_id=record_id,
                tool=call.name,
                args=args,
                idempotency_key=record_id,
                step=step,
            ),
            result_type=ToolRunResult,
            **TOOL_OPTS,
        )
        if run.ok:
            return json.dumps(run.result), None
        return json.dumps({"status": "failed", "error": run.error}), None

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

    @workflow.signal(name=SWITCHES_CHANGED_SIGNAL)
    def switches_changed(self) -> None:
        self._switch_epoch += 1

    # -- records ------------------------------------------------------------------------------------
    async def _status(self, status: str) -> None:
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(task_id=self.inp.task_id, tenant_id=self.inp.tenant_id, status=status),  # type: ignore[arg-type]
            result_type=Ack,
            **RECORD_OPTS,
        )

    async def _finish(self, result: TaskWorkflowResult) -> None:
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                status=result.status,
                outcome=result.outcome,
                output=result.output,
                error=result.error,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )

    async def _record_step(
        self,
        index: int,
        step: StepSpec,
        status: str,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        *,
        kind: str = "agent",
        rung: int | None = None,
        tier: str | None = None,
    ) -> None:
        await workflow.execute_activity(
            "task.record_step",
            StepRecord(
                task_id=self.inp.task_id,
                tenant_id=self.inp.tenant_id,
                index=index,
                name=step.name,
                agent=step.agent or step.tool,
                status=status,  # type: ignore[arg-type]
                output=output,
                error=error,
                kind=kind,
                rung=rung,
                tier=tier,
            ),
            result_type=Ack,
            **RECORD_OPTS,
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
