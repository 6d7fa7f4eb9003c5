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

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        TASK_WORKFLOW_NAME,
        Ack,
        AgentSpec,
        ApprovalSpec,
        ChatMessage,
        ModelCallInput,
        ModelCallResult,
        ReleaseInput,
        RoutingFacts,
        StepSpec,
        TaskWorkflowInput,
        TaskWorkflowResult,
        ValidateOutputInput,
        ValidateOutputResult,
    )
    from workers.workflows.support import (
        MODEL_OPTS,
        RECORD_OPTS,
        StepOutcome,
        holds,
        judge_accepts,
        opening_messages,
        prompt_chars,
        reason_of,
        refusal,
        repair_message,
    )

from workers.workflows.checkpoints import Checkpoints
from workers.workflows.governance import Governance
from workers.workflows.steps import StepKinds


@workflow.defn(name=TASK_WORKFLOW_NAME)
class TaskWorkflow(StepKinds, Governance, Checkpoints):
    """The parts live in steps.py, governance.py and checkpoints.py; state in base.py."""

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
