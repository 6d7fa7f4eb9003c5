"""The agent step of the task workflow: an escalation ladder of agent loops.

Each turn of a loop: check kill switches and reserve the worst case of the call on every budget
-> model call (through the router; the activity settles the real cost) -> each tool call the model
asks for runs under governance -> its result goes back to the model, until a final answer or a
turn limit. The final answer is validated against the agent's output model, with one repair turn;
an answer that no rung gets accepted goes to a person.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from orchestrator.contracts import (
        CALL_MODEL,
        MODEL_TURN,
        RELEASE_BUDGET,
        VALIDATE_OUTPUT,
        AgentSpec,
        ApprovalSpec,
        ChatMessage,
        ModelCallInput,
        ModelCallResult,
        ModelTurnInput,
        ReleaseInput,
        RoutingFacts,
        TaskWorkflowInput,
        ToolStepResult,
        ValidateOutputInput,
        ValidateOutputResult,
    )
    from workers.workflows.support import (
        MODEL_OPTS,
        RECORD_OPTS,
        Mode,
        StepOutcome,
        call,
        judge_accepts,
        opening_messages,
        prompt_chars,
        refusal,
        repair_message,
    )

from workers.workflows.checkpoints import Checkpoints
from workers.workflows.governance import Governance


class AgentRunner:
    """Runs agent steps (`run`), counting the model turns of the whole task against its limit."""

    def __init__(
        self, inp: TaskWorkflowInput, mode: Mode, governance: Governance, checkpoints: Checkpoints
    ) -> None:
        self._inp = inp
        self._mode = mode
        self._governance = governance
        self._checkpoints = checkpoints
        self._turns = 0

    async def run(
        self,
        name: str,
        agent: AgentSpec,
        outputs: dict[str, Any],
        assignment: str | None = None,
        note: str | None = None,
    ) -> StepOutcome:
        """Climb the agent's ladder of tiers until an answer is accepted."""
        outcome = StepOutcome("failed", error="the agent has no tier")
        for rung, tier in enumerate(agent.ladder, start=1):
            outcome = await self._loop(name, agent, tier, rung, outputs, assignment, note)
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
        judge = self._inp.definition.agents[validator.judge_agent or ""]
        verdict = await self.run(f"{name}.judge", judge, {**outputs, name: output or {}})
        return judge_accepts(verdict.output if verdict.status == "completed" else None)

    async def _output_review(
        self, name: str, agent: AgentSpec, outcome: StepOutcome, why: str
    ) -> StepOutcome:
        """The last rung's answer was not accepted either: a person decides."""
        state = await self._checkpoints.ask(
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

    async def _loop(
        self,
        name: str,
        agent: AgentSpec,
        tier: str,
        rung: int,
        outputs: dict[str, Any],
        assignment: str | None,
        note: str | None,
    ) -> StepOutcome:
        inp = self._inp
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
            asked = ModelCallInput(
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
            checked: ValidateOutputResult | None = None
            ready: list[ToolStepResult] = []  # the calls the turn already took
            checkpoint_id = ""
            if self._mode.combined:
                checkpoint_id = f"cp_{workflow.uuid4().hex[:20]}"
                chars = prompt_chars(messages, tools)
                turned = await self._turn(name, agent, asked, chars, f"{key}:{turn}", checkpoint_id)
                if isinstance(turned, StepOutcome):
                    return turned
                reply, checked, ready = turned
            else:
                stop = await self._governance.reserve(
                    name, agent, tier, request_id, prompt_chars(messages, tools)
                )
                if stop is not None:
                    return stop
                reply = await self._model_call(asked)
            messages.append(reply.message)
            if reply.message.tool_calls:
                for index, request in enumerate(reply.message.tool_calls):
                    content, rejected = await self._governance.tool_call(
                        agent, name, f"{key}:{turn}", turn, index, request,
                        ready=ready[index] if index < len(ready) else None,
                        checkpoint_id=checkpoint_id,
                    )  # fmt: skip
                    rejection = rejected or rejection
                    messages.append(ChatMessage(role="tool", tool_call_id=request.id, content=content))
                continue
            if checked is None:
                answer = ValidateOutputInput(
                    output_model=agent.output_model, text=reply.message.content or ""
                )
                checked = await call(VALIDATE_OUTPUT, answer, RECORD_OPTS)
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

    async def _turn(
        self,
        step: str,
        agent: AgentSpec,
        request: ModelCallInput,
        chars: int,
        prefix: str,
        checkpoint_id: str,
    ) -> tuple[ModelCallResult, ValidateOutputResult | None, list[ToolStepResult]] | StepOutcome:
        """The combined path: switches, reservation, the call and then a final answer's validation
        or the tool calls' steps as far as they go, in one round trip; asked again while a refusal
        resolves (a pause lifts, a raise is approved)."""
        # The tools and the output schema are read by the activity from the pinned definition.
        turn = ModelTurnInput(
            **request.model_dump(exclude={"tools", "output_schema"}),
            pinned_agent=agent.ref,
            prompt_chars=chars,
            step_limit_usd=agent.step_budget_usd,
            output_model=agent.output_model,
            tool_record_prefix=prefix,
            checkpoint_id=checkpoint_id,
        )
        while True:
            self._checkpoints.expect(checkpoint_id)  # the turn may open it
            try:
                done = await call(MODEL_TURN, turn, MODEL_OPTS)
            except BaseException:
                self._checkpoints.expect(None)
                # Reserved but never settled (cancelled, or failed for another reason than the
                # router's answer): the worst case reserved is given back.
                await call(RELEASE_BUDGET, ReleaseInput(reservation_id=request.request_id), RECORD_OPTS)
                raise
            if not any(t.checkpoint_opened for t in done.tools):
                self._checkpoints.expect(None)
            if done.reply is not None:
                return done.reply, done.checked, done.tools
            stop = await self._governance.after_refusal(step, agent, done.reserve)
            if stop is not None:
                return stop

    async def _model_call(self, request: ModelCallInput) -> ModelCallResult:
        """The call settles its reservation itself; if it never ran to the end (cancelled, or failed
        for any other reason than the router's answer), the worst case reserved is given back."""
        try:
            return await call(CALL_MODEL, request, MODEL_OPTS)
        except BaseException:
            if not workflow.patched("release-on-failure-1"):
                raise  # a history from before reservations were released on failure
            await call(RELEASE_BUDGET, ReleaseInput(reservation_id=request.request_id), RECORD_OPTS)
            raise
