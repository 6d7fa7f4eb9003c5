"""The task workflow: runs the pinned steps of a workflow definition.

An agent step is the agent loop: model call (through the router) -> for each tool call the model
asks for: authorize (policy engine) -> checkpoint if policy says so, waiting for a decision
delivered as a validated update -> tool activity (idempotent by key) -> result back to the model,
until a final answer or max turns. The final answer is validated against the agent's output
model with one repair turn.

Deterministic by construction: no I/O, clocks or randomness here; ids come from the task id and
the position in the loop, or `workflow.uuid4()`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workers.domain import (
        DECIDE_UPDATE_NAME,
        TASK_WORKFLOW_NAME,
        Ack,
        AgentSpec,
        AuthorizeToolInput,
        AuthorizeToolResult,
        ChatMessage,
        CheckpointDecisionRecord,
        CheckpointOpenInput,
        DecisionRequest,
        DecisionResult,
        ModelCallInput,
        ModelCallResult,
        RoutingFacts,
        StepRecord,
        StepSpec,
        TaskStatusUpdate,
        TaskWorkflowInput,
        TaskWorkflowResult,
        ToolCallRequest,
        ToolRunInput,
        ToolRunResult,
        ValidateOutputInput,
        ValidateOutputResult,
    )

RECORD_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=20, maximum_interval=timedelta(seconds=10)),
}
MODEL_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(maximum_attempts=3, non_retryable_error_types=["RouterError"]),
}
TOOL_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=10)),
}
REPAIR_PREFIX = "Your previous answer was not valid against the output schema"


@dataclass
class StepOutcome:
    status: str  # completed | failed | rejected | limit_reached
    output: dict[str, Any] | None = None
    error: str | None = None


@workflow.defn(name=TASK_WORKFLOW_NAME)
class TaskWorkflow:
    def __init__(self) -> None:
        self._requester_id = ""
        self._open: set[str] = set()
        self._decisions: dict[str, DecisionRequest] = {}
        self._recorded: set[str] = set()
        self._inp: TaskWorkflowInput | None = None

    @workflow.run
    async def run(self, inp: TaskWorkflowInput) -> TaskWorkflowResult:
        self._inp = inp
        self._requester_id = inp.requester_id
        await self._status("running")
        try:
            result = await self._run_steps(inp)
        except asyncio.CancelledError:
            await self._finish(TaskWorkflowResult(status="cancelled", error="cancelled on request"))
            raise
        await self._finish(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _run_steps(self, inp: TaskWorkflowInput) -> TaskWorkflowResult:
        previous: dict[str, Any] | None = None
        for index, step in enumerate(inp.definition.steps):
            await self._record_step(index, step, "running")
            try:
                outcome = await self._agent_step(inp, step, previous)
            except ActivityError as err:
                outcome = StepOutcome("failed", error=_reason(err))
            await self._record_step(index, step, outcome.status, outcome.output, outcome.error)
            if outcome.status == "rejected":
                return TaskWorkflowResult(
                    status="rejected", outcome="unresolved", output=outcome.output, error=outcome.error
                )
            if outcome.status != "completed":
                reason = f"step {step.name!r} {outcome.status.replace('_', ' ')}: {outcome.error}"
                return TaskWorkflowResult(status="failed", outcome="unresolved", error=reason)
            previous = outcome.output
        return TaskWorkflowResult(status="completed", outcome="resolved", output=previous)

    # -- the agent loop -----------------------------------------------------------------------------
    async def _agent_step(
        self, inp: TaskWorkflowInput, step: StepSpec, previous: dict[str, Any] | None
    ) -> StepOutcome:
        agent = inp.definition.agents[step.agent]
        facts = RoutingFacts(
            tenant_id=inp.tenant_id,
            requester_id=inp.requester_id,
            task_id=inp.task_id,
            step=step.name,
            agent=agent.name,
            category=inp.definition.category,
            risk_class=inp.definition.risk_class,
            data_classification=inp.definition.data_classification,
        )
        messages = _opening_messages(agent, inp, previous)
        tools = [inp.definition.tools[ref.split("@", 1)[0]] for ref in agent.tools]
        rejection: str | None = None
        repaired = False
        for turn in range(1, agent.max_turns + 1):
            reply: ModelCallResult = await workflow.execute_activity(
                "model.call",
                ModelCallInput(
                    facts=facts,
                    turn=turn,
                    request_id=f"{inp.task_id}/{step.name}/{turn}",
                    tier=agent.tier,
                    messages=messages,
                    tools=tools,
                    output_schema=agent.output_schema,
                    max_tokens=agent.max_tokens,
                ),
                result_type=ModelCallResult,
                **MODEL_OPTS,
            )
            messages.append(reply.message)
            if reply.message.tool_calls:
                for index, call in enumerate(reply.message.tool_calls):
                    content, rejected = await self._tool_call(inp, agent, step, turn, index, call)
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
                    error=(
                        f"the final answer did not match {agent.output_model} "
                        f"after one repair turn: {checked.errors}"
                    ),
                )
            repaired = True
            messages.append(
                ChatMessage(
                    role="user",
                    content=(
                        f"{REPAIR_PREFIX}: {checked.errors}. "
                        "Reply with only a JSON object that matches the schema."
                    ),
                )
            )
        return StepOutcome(
            "limit_reached",
            error=f"agent {agent.name} used all {agent.max_turns} turns without a valid final answer",
        )

    async def _tool_call(
        self,
        inp: TaskWorkflowInput,
        agent: AgentSpec,
        step: StepSpec,
        turn: int,
        index: int,
        call: ToolCallRequest,
    ) -> tuple[str, str | None]:
        """Authorize, maybe wait for approval, run. Returns (content for the model, rejection)."""
        record_id = f"{inp.task_id}:{step.name}:{turn}:{index}"
        allowed = {ref.split("@", 1)[0]: ref.split("@", 1)[1] for ref in agent.tools}
        auth: AuthorizeToolResult = await workflow.execute_activity(
            "policy.authorize_tool",
            AuthorizeToolInput(
                record_id=record_id,
                tool_version=allowed.get(call.name),
                task_id=inp.task_id,
                tenant_id=inp.tenant_id,
                requester_id=inp.requester_id,
                step=step.name,
                turn=turn,
                agent=agent.name,
                tool=call.name,
                arguments=call.arguments,
                tool_call_id=call.id,
                data_classification=inp.definition.data_classification,
            ),
            result_type=AuthorizeToolResult,
            **RECORD_OPTS,
        )
        if auth.effect == "deny" or auth.args is None:
            return json.dumps({"status": "denied", "error": auth.reason}), None
        if auth.effect == "approve":
            decision = await self._checkpoint(inp, step, call.name, auth)
            if decision.decision == "reject":
                reason = f"{call.name} was rejected by {decision.decider_id}" + (
                    f": {decision.comment}" if decision.comment else ""
                )
                return json.dumps({"status": "rejected", "comment": decision.comment}), reason
        run: ToolRunResult = await workflow.execute_activity(
            f"tool__{call.name}__call",
            ToolRunInput(
                task_id=inp.task_id,
                tenant_id=inp.tenant_id,
                tool_call_record_id=record_id,
                tool=call.name,
                args=auth.args,
                idempotency_key=record_id,
            ),
            result_type=ToolRunResult,
            **TOOL_OPTS,
        )
        if run.ok:
            return json.dumps(run.result), None
        return json.dumps({"status": "failed", "error": run.error}), None

    async def _checkpoint(
        self, inp: TaskWorkflowInput, step: StepSpec, tool: str, auth: AuthorizeToolResult
    ) -> DecisionRequest:
        checkpoint_id = f"cp_{workflow.uuid4().hex[:20]}"
        # Open for decisions before the row is written: the API shows a checkpoint only once its
        # row exists, and a decision sent that very moment must not find the workflow unready.
        self._open.add(checkpoint_id)
        await workflow.execute_activity(
            "checkpoint.open",
            CheckpointOpenInput(
                checkpoint_id=checkpoint_id,
                task_id=inp.task_id,
                tenant_id=inp.tenant_id,
                requester_id=inp.requester_id,
                step=step.name,
                tool_call_record_id=auth.tool_call_record_id,
                tool=tool,
                args=auth.args or {},
                args_digest=auth.args_digest,
                policy_version=auth.policy_version,
                rule=auth.rule,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )
        # Proceed only once the decision is durably recorded, so the tool never runs ahead of it.
        await workflow.wait_condition(lambda: checkpoint_id in self._recorded)
        self._open.discard(checkpoint_id)
        return self._decisions[checkpoint_id]

    # -- the decision update ------------------------------------------------------------------------
    @workflow.update(name=DECIDE_UPDATE_NAME)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        if req.checkpoint_id in self._decisions:  # two updates admitted in one activation
            raise ApplicationError("this checkpoint has already been decided", type="CheckpointNotOpen")
        self._decisions[req.checkpoint_id] = req  # claimed before any await: single use
        assert self._inp is not None
        await workflow.execute_activity(
            "checkpoint.record_decision",
            CheckpointDecisionRecord(
                checkpoint_id=req.checkpoint_id,
                task_id=self._inp.task_id,
                tenant_id=self._inp.tenant_id,
                decision=req.decision,
                decider_id=req.decider_id,
                comment=req.comment,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )
        self._recorded.add(req.checkpoint_id)
        return DecisionResult(
            checkpoint_id=req.checkpoint_id, decision=req.decision, decider_id=req.decider_id
        )

    @decide.validator
    def _validate_decide(self, req: DecisionRequest) -> None:
        if req.checkpoint_id in self._decisions:
            raise ApplicationError("this checkpoint has already been decided", type="CheckpointNotOpen")
        if req.checkpoint_id not in self._open:
            raise ApplicationError("this checkpoint is not open on this task", type="CheckpointNotOpen")
        if "approver" not in req.decider_roles:
            raise ApplicationError("deciding needs the approver role", type="Forbidden")
        if req.decider_id == self._requester_id:
            raise ApplicationError(
                "the requester cannot decide a checkpoint of their own task", type="Forbidden"
            )

    # -- records ------------------------------------------------------------------------------------
    async def _status(self, status: str) -> None:
        assert self._inp is not None
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(task_id=self._inp.task_id, tenant_id=self._inp.tenant_id, status=status),  # type: ignore[arg-type]
            result_type=Ack,
            **RECORD_OPTS,
        )

    async def _finish(self, result: TaskWorkflowResult) -> None:
        assert self._inp is not None
        await workflow.execute_activity(
            "task.set_status",
            TaskStatusUpdate(
                task_id=self._inp.task_id,
                tenant_id=self._inp.tenant_id,
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
    ) -> None:
        assert self._inp is not None
        await workflow.execute_activity(
            "task.record_step",
            StepRecord(
                task_id=self._inp.task_id,
                tenant_id=self._inp.tenant_id,
                index=index,
                name=step.name,
                agent=step.agent,
                status=status,  # type: ignore[arg-type]
                output=output,
                error=error,
            ),
            result_type=Ack,
            **RECORD_OPTS,
        )


def _opening_messages(
    agent: AgentSpec, inp: TaskWorkflowInput, previous: dict[str, Any] | None
) -> list[ChatMessage]:
    system = (
        f"{agent.instructions}\n\nWhen you give your final answer, reply with only a JSON object "
        f"that matches this JSON schema:\n{json.dumps(agent.output_schema, sort_keys=True)}"
    )
    user = inp.input_text
    if inp.input_data:
        user += "\n\nStructured input:\n" + json.dumps(inp.input_data, sort_keys=True)
    if previous is not None:
        user += "\n\nResult of the previous step:\n" + json.dumps(previous, sort_keys=True)
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


def _reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)
