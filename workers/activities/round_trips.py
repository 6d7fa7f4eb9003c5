"""The combined activities (orchestrator/contracts/round_trips.py): one round trip per agent turn
and per tool call, made of the very code the single activities run, in the same order.

Every part is idempotent on its own key (the reservation id, the model call's request id, the
tool call's record id, the checkpoint id), so a retried round trip repeats nothing that happened:
a reservation is found again, a model call that the router answered returns the recorded answer,
an authorized call keeps its first decision, a checkpoint is opened once, a tool runs once.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from orchestrator import telemetry
from orchestrator.contracts import (
    MODEL_TURN,
    TOOL_STEP,
    ApprovalSpec,
    AuthorizeToolInput,
    AuthorizeToolResult,
    CheckpointOpenInput,
    ModelTurnInput,
    ModelTurnResult,
    ReserveInput,
    ToolCallRequest,
    ToolRunInput,
    ToolStepInput,
    ToolStepResult,
    ValidateOutputInput,
    tool_record_id,
)
from orchestrator.services.switches import SwitchService
from workers.activities import implements
from workers.activities.budgets import BudgetActivities
from workers.activities.governance import GovernanceActivities, switch_info
from workers.activities.model_calls import ModelActivities
from workers.activities.model_ledger import DatabaseWait
from workers.activities.pinned import PinnedDefinitions
from workers.activities.tools import ToolActivities

log = logging.getLogger(__name__)


class RoundTripActivities:
    def __init__(
        self,
        budgets: BudgetActivities,
        models: ModelActivities,
        governance: GovernanceActivities,
        tools: ToolActivities,
        switches: SwitchService,
        pinned: PinnedDefinitions,
        db: DatabaseWait,
    ) -> None:
        self._pinned = pinned
        self._db = db
        self._budgets = budgets
        self._models = models
        self._governance = governance
        self._tools = tools
        self._switches = switches

    @implements(MODEL_TURN)
    async def model_turn(self, turn: ModelTurnInput) -> ModelTurnResult:
        """One agent turn, as a `frontdesk.turn` span with its reservation, call and tools inside,
        under its step's `invoke_agent` span (emitted when the step ends: workers/activities/records.py)."""
        if not telemetry.enabled():
            return await self._model_turn(turn)
        with (
            telemetry.under_step(turn.facts.task_id, turn.facts.step),
            telemetry.span(f"frontdesk.turn {turn.turn}", turn_attributes(turn)) as span,
        ):
            result = await self._model_turn(turn)
            if result.reply is None:
                span.set_attribute("frontdesk.turn.refused", True)
            span.set_attribute("frontdesk.tool_calls", len(result.tools))
            return result

    async def _model_turn(self, turn: ModelTurnInput) -> ModelTurnResult:
        """Switches and the worst case reserved, then the call (which settles its real cost), then
        a final answer's validation. A refused reservation returns before the model is asked."""
        facts = turn.facts
        reservation = ReserveInput(
            reservation_id=turn.reservation_id or turn.request_id,
            tenant_id=facts.tenant_id,
            task_id=facts.task_id,
            step=facts.step,
            agent=facts.agent,
            tier=turn.tier,
            prompt_chars=turn.prompt_chars,
            max_tokens=turn.max_tokens,
            step_limit_usd=turn.step_limit_usd,
        )
        # A database outage is waited out here, as in the model call's own records: the turn has
        # only MODEL_OPTS' few attempts, which a retry per failed statement would spend in seconds.
        reserved = await self._db.run(self._budgets.reserve_now, reservation)
        if not reserved.ok:
            return ModelTurnResult(reserve=reserved)
        versions = {t.name: t.version for t in turn.tools}
        if turn.pinned_agent is not None:
            pinned = await self._db.run(self._pinned.agent, facts.tenant_id, facts.task_id, turn.pinned_agent)
            turn = turn.model_copy(update={"tools": pinned.tools, "output_schema": pinned.output_schema})
            versions = pinned.tool_versions
        reply = await self._models.call_reserved(turn, Decimal(reserved.amount_usd))
        calls = reply.message.tool_calls
        if calls and turn.tool_record_prefix is not None:
            done = await self._tool_steps(turn, calls, versions)
            return ModelTurnResult(reserve=reserved, reply=reply, tools=done)
        checked = None
        if turn.output_model is not None and not calls:
            answer = ValidateOutputInput(output_model=turn.output_model, text=reply.message.content or "")
            checked = await self._tools.validate_output(answer)
        return ModelTurnResult(reserve=reserved, reply=reply, checked=checked)

    async def _tool_steps(
        self, turn: ModelTurnInput, calls: list[ToolCallRequest], versions: dict[str, str]
    ) -> list[ToolStepResult]:
        """Each call's tool.step, in order, until one would wait (a paused switch: nothing is
        recorded for it) or opens an approval (it ends the list). An error stops the list too,
        without failing the turn: the model's answer is recorded, and the workflow runs the
        remaining calls as tool.step activities, with their own retries (a database outage is
        waited out there; a call that got as far as its record is found again by its id)."""
        facts, prefix = turn.facts, turn.tool_record_prefix or ""
        done: list[ToolStepResult] = []
        for index, request in enumerate(calls):
            asked = AuthorizeToolInput(
                record_id=tool_record_id(facts.task_id, prefix, index),
                tool_version=versions.get(request.name),
                task_id=facts.task_id,
                tenant_id=facts.tenant_id,
                requester_id=facts.requester_id,
                step=facts.step,
                turn=turn.turn,
                agent=facts.agent,
                tool=request.name,
                arguments=request.arguments,
                tool_call_id=request.id,
                data_classification=facts.data_classification,
                risk_class=facts.risk_class,
                category=facts.category,
            )
            try:
                result = await self._execute_tool(
                    ToolStepInput(authorize=asked, checkpoint_id=turn.checkpoint_id)
                )
            except Exception:
                log.warning(
                    "model.turn %s: tool call %d left to the workflow", turn.request_id, index, exc_info=True
                )
                break
            if result.auth is not None and result.auth.paused is not None:
                break
            done.append(result)
            if result.checkpoint_opened:
                break
        return done

    @implements(TOOL_STEP)
    async def tool_step(self, step: ToolStepInput) -> ToolStepResult:
        """One tool call (the workflow's own, outside a turn), under its step's `invoke_agent` span."""
        if not telemetry.enabled():
            return await self._tool_step(step)
        asked, run = step.authorize, step.approved
        task_id = asked.task_id if asked is not None else run.task_id if run is not None else ""
        name = asked.step if asked is not None else run.step if run is not None else ""
        with telemetry.under_step(task_id, name):
            return await self._execute_tool(step)

    async def _execute_tool(self, step: ToolStepInput) -> ToolStepResult:
        """One tool call as the `execute_tool` span: its decision, and its run when it may run."""
        if not telemetry.enabled():
            return await self._tool_step(step)
        asked, run = step.authorize, step.approved
        tool = asked.tool if asked is not None else run.tool if run is not None else ""
        with telemetry.span(f"execute_tool {tool}", tool_attributes(step, tool)) as span:
            result = await self._tool_step(step)
            decided(span, result)
            return result

    async def _tool_step(self, step: ToolStepInput) -> ToolStepResult:
        if step.approved is not None:
            return await self._run_approved(step.approved, step.agent)
        if step.authorize is None:
            raise ValueError("a tool step needs either `authorize` or `approved`")
        auth = await self._governance.authorize_tool(step.authorize)
        if auth.paused is not None or auth.effect == "deny" or auth.args is None:
            return ToolStepResult(auth=auth)
        if auth.effect == "approve":
            await self._governance.open_checkpoint(_opening(step.authorize, auth, step.checkpoint_id))
            return ToolStepResult(auth=auth, checkpoint_opened=True)
        run = ToolRunInput(
            task_id=step.authorize.task_id,
            tenant_id=step.authorize.tenant_id,
            tool_call_record_id=auth.tool_call_record_id,
            tool=step.authorize.tool,
            args=auth.args,
            idempotency_key=auth.tool_call_record_id,
            step=step.authorize.step,
        )
        return ToolStepResult(auth=auth, run=await self._tools.run(run))

    async def _run_approved(self, run: ToolRunInput, agent: str) -> ToolStepResult:
        """A person approved these arguments; a switch may have flipped while they decided."""
        hit = await asyncio.to_thread(
            self._switches.check, tenant_id=run.tenant_id, agent=agent or None, tool=run.tool
        )
        if hit is not None:
            return ToolStepResult(switch=switch_info(hit))
        return ToolStepResult(run=await self._tools.run(run))


def _opening(asked: AuthorizeToolInput, auth: AuthorizeToolResult, checkpoint_id: str) -> CheckpointOpenInput:
    if not checkpoint_id:
        raise ValueError("a tool step that may need an approval needs a checkpoint_id")
    return CheckpointOpenInput(
        checkpoint_id=checkpoint_id,
        kind="tool_approval",
        task_id=asked.task_id,
        tenant_id=asked.tenant_id,
        requester_id=asked.requester_id,
        step=asked.step,
        tool_call_record_id=auth.tool_call_record_id,
        tool=asked.tool,
        args=auth.args or {},
        args_digest=auth.args_digest,
        policy_version=auth.policy_version,
        rule=auth.rule,
        reason=auth.reason,
        approval=auth.approval or ApprovalSpec(rule_id=auth.rule_id),
    )


def turn_attributes(turn: ModelTurnInput) -> dict[str, str | int]:
    facts = turn.facts
    return {
        "gen_ai.agent.name": facts.agent,
        "gen_ai.conversation.id": facts.task_id,
        "gen_ai.request.model": turn.tier,
        "frontdesk.task.id": facts.task_id,
        "frontdesk.step": facts.step,
        "frontdesk.turn": turn.turn,
    }


def tool_attributes(step: ToolStepInput, tool: str) -> dict[str, str | int]:
    attrs: dict[str, str | int] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.type": "function",
    }
    if step.authorize is not None:
        asked = step.authorize
        attrs.update(
            {
                "gen_ai.tool.call.id": asked.tool_call_id,
                "gen_ai.agent.name": asked.agent,
                "frontdesk.task.id": asked.task_id,
                "frontdesk.step": asked.step,
                "frontdesk.tool.record_id": asked.record_id,
            }
        )
    elif step.approved is not None:
        run = step.approved
        attrs.update(
            {
                "frontdesk.task.id": run.task_id,
                "frontdesk.step": run.step,
                "frontdesk.tool.record_id": run.tool_call_record_id,
                "frontdesk.tool.decision": "approved",
            }
        )
    return attrs


def decided(span: Any, result: ToolStepResult) -> None:
    """The policy's decision and the run's end, on the `execute_tool` span (no arguments, no
    result: their digests are in the audit trail)."""
    auth = result.auth
    if auth is not None:
        span.set_attributes(
            {
                "frontdesk.tool.decision": "paused" if auth.paused is not None else auth.effect,
                "frontdesk.policy.rule": auth.rule_id or auth.rule,
                "frontdesk.policy.version": auth.policy_version,
                "frontdesk.tool.args_digest": auth.args_digest,
            }
        )
    if result.checkpoint_opened:
        span.set_attribute("frontdesk.checkpoint.opened", True)
    if result.switch is not None:
        span.set_attribute("frontdesk.switch.mode", result.switch.mode)
    if result.run is not None:
        span.set_attribute("frontdesk.tool.ok", result.run.ok)
        if not result.run.ok:
            span.set_attribute("error.type", "tool_error")
