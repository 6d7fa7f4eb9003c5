"""Activities of governance: authorize a tool call; open, decide, escalate and reassign checkpoints.

Policy decisions happen in the policy engine, here, never in workflow code (casbin reads files,
and workflow code must be deterministic). Every decision is recorded with the policy version and
the rule, and appended to the audit trail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from orchestrator import audit, metrics, telemetry
from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.contracts import (
    AUTHORIZE_TOOL,
    ESCALATE_CHECKPOINT,
    OPEN_CHECKPOINT,
    REAUTHORIZE_EDIT,
    RECORD_DECISION,
    RECORD_REASSIGN,
    Ack,
    ApprovalSpec,
    AuthorizeToolInput,
    AuthorizeToolResult,
    CheckpointDecisionRecord,
    CheckpointOpenInput,
    EscalateInput,
    ReassignRecord,
    ReauthorizeInput,
    ReauthorizeResult,
    SideEffect,
    SwitchInfo,
)
from orchestrator.db import session_scope
from orchestrator.models import Checkpoint, CheckpointDecision, Task, Tenant, ToolCall, table_of, utcnow
from orchestrator.policy.engine import ApprovalRule, PolicyEngine, ToolFacts
from orchestrator.services import notify
from orchestrator.services.switches import SwitchService
from workers.activities import implements


def args_digest(args: dict[str, Any]) -> str:
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validation_message(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors())


def approval_spec(rule: ApprovalRule | None) -> ApprovalSpec | None:
    return rule.spec() if rule is not None else None


def switch_info(hit: Any) -> SwitchInfo:
    return SwitchInfo(scope=hit.scope, subject=hit.subject, mode=hit.mode, message=hit.message)


class GovernanceActivities:
    def __init__(
        self, engine: Engine, policy: PolicyEngine, catalog: Catalog, switches: SwitchService
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._catalog = catalog
        self._switches = switches
        self._domains: dict[str, str] = {}

    def _tenant_domain(self, session: Session, tenant_id: str) -> str:
        if tenant_id not in self._domains:
            tenant = session.get(Tenant, tenant_id)
            self._domains[tenant_id] = tenant.domain if tenant else ""
        return self._domains[tenant_id]

    def _facts(self, session: Session, tenant_id: str, side_effect: SideEffect, inp: Any) -> ToolFacts:
        return ToolFacts(
            side_effect=side_effect,
            data_classification=inp.data_classification,
            risk_class=inp.risk_class,
            category=inp.category,
            tenant_domain=self._tenant_domain(session, tenant_id),
        )

    # -- authorize ------------------------------------------------------------------------------------
    @implements(AUTHORIZE_TOOL)
    async def authorize_tool(self, inp: AuthorizeToolInput) -> AuthorizeToolResult:
        return await asyncio.to_thread(self._authorize, inp)

    def _decide(self, session: Session, inp: AuthorizeToolInput) -> tuple[AuthorizeToolResult, str]:
        """Validate the arguments, check switches, ask the policy engine. Returns (result, status)."""
        version = self._policy.version
        raw_digest = hashlib.sha256(inp.arguments.encode()).hexdigest()

        def refuse(reason: str, status: str, rule_id: str = "") -> tuple[AuthorizeToolResult, str]:
            result = AuthorizeToolResult(
                tool_call_record_id=inp.record_id,
                effect="deny",
                policy_version=version,
                rule=rule_id,
                rule_id=rule_id,
                reason=reason,
                args_digest=raw_digest,
            )
            return result, status

        if inp.tool_version is None:
            return refuse(f"agent {inp.agent!r} may not ask for tool {inp.tool!r}", "denied")
        try:
            tool = self._catalog.tool(f"{inp.tool}@{inp.tool_version}")
        except CatalogError:
            return refuse(f"tool {inp.tool}@{inp.tool_version} is not in this worker's catalog", "denied")
        try:
            parsed = json.loads(inp.arguments or "{}")
            args_model = tool.args_model.model_validate(parsed)
        except json.JSONDecodeError as exc:
            return refuse(f"arguments are not valid JSON: {exc.msg}", "invalid")
        except ValidationError as exc:
            return refuse(f"arguments are invalid: {validation_message(exc)}", "invalid")
        hit = self._switches.check(tenant_id=inp.tenant_id, agent=inp.agent, tool=inp.tool)
        if hit is not None and hit.mode == "stop":
            return refuse(f"stopped by {hit.message}", "denied", rule_id="kill-switch")
        decision = self._policy.decide_tool(
            tenant_id=inp.tenant_id,
            agent=inp.agent,
            tool=inp.tool,
            args=args_model.model_dump(),
            facts=self._facts(session, inp.tenant_id, tool.spec.side_effect, inp),
        )
        args_json = args_model.model_dump(mode="json")
        status = {"allow": "allowed", "approve": "awaiting_approval", "deny": "denied"}[decision.effect]
        result = AuthorizeToolResult(
            tool_call_record_id=inp.record_id,
            effect=decision.effect,
            policy_version=decision.policy_version,
            rule=decision.rule,
            rule_id=decision.rule_id,
            reason=decision.reason,
            args=args_json,
            args_digest=args_digest(args_json),
            approval=approval_spec(decision.approval),
        )
        return result, status

    def _authorize(self, inp: AuthorizeToolInput) -> AuthorizeToolResult:
        with session_scope(self._engine) as session:
            existing = session.get(ToolCall, inp.record_id)
            if existing is not None:  # a retried activity: the first decision stands
                return self._replayed(session, existing)
            hit = self._switches.check(tenant_id=inp.tenant_id, agent=inp.agent, tool=inp.tool)
            if hit is not None and hit.mode == "pause":
                # Nothing is recorded yet: the call is decided when the pause lifts.
                return AuthorizeToolResult(
                    tool_call_record_id=inp.record_id,
                    effect="deny",
                    policy_version=self._policy.version,
                    rule="",
                    reason=hit.message,
                    args_digest="",
                    paused=switch_info(hit),
                )
            result, status = self._decide(session, inp)
            if result.effect == "deny":
                metrics.record_policy_denial(inp.tool, result.rule_id or status)
            session.add(
                ToolCall(
                    id=inp.record_id,
                    tenant_id=inp.tenant_id,
                    task_id=inp.task_id,
                    step=inp.step,
                    turn=inp.turn,
                    agent=inp.agent,
                    tool=inp.tool,
                    tool_version=inp.tool_version,
                    model_tool_call_id=inp.tool_call_id,
                    args_json=json.dumps(result.args)
                    if result.args is not None
                    else json.dumps(inp.arguments),
                    args_digest=result.args_digest,
                    effect=result.effect,
                    policy_version=result.policy_version,
                    rule=result.rule,
                    rule_id=result.rule_id,
                    reason=result.reason,
                    status=status,
                    idempotency_key=inp.record_id,
                )
            )
            session.flush()
            action = {"allow": "tool.allowed", "approve": "tool.approval_required", "deny": "tool.denied"}
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor=f"agent:{inp.agent}",
                action=action[result.effect],
                subject=f"{inp.tool}:{inp.record_id}",
                reason=result.reason,
                data={
                    "policy_version": result.policy_version,
                    "rule": result.rule,
                    "rule_id": result.rule_id,
                    "args_digest": result.args_digest,
                },
            )
            return result

    def _replayed(self, session: Session, existing: ToolCall) -> AuthorizeToolResult:
        approval = None
        if existing.effect == "approve":
            approval = self._policy.approval_for(existing.rule_id)
        return AuthorizeToolResult(
            tool_call_record_id=existing.id,
            effect=existing.effect,
            policy_version=existing.policy_version,
            rule=existing.rule,
            rule_id=existing.rule_id,
            reason=existing.reason,
            args=json.loads(existing.args_json) if existing.effect != "deny" else None,
            args_digest=existing.args_digest,
            approval=approval_spec(approval),
        )

    # -- checkpoints ----------------------------------------------------------------------------------
    @implements(OPEN_CHECKPOINT)
    async def open_checkpoint(self, inp: CheckpointOpenInput) -> Ack:
        await asyncio.to_thread(self._open, inp)
        return Ack()

    def _open(self, inp: CheckpointOpenInput) -> None:
        with session_scope(self._engine) as session:
            if session.get(Checkpoint, inp.checkpoint_id) is not None:
                return
            first_sla = min((e.after_seconds for e in inp.approval.sla), default=None)
            cp = Checkpoint(
                id=inp.checkpoint_id,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                tool_call_id=inp.tool_call_record_id,
                requester_id=inp.requester_id,
                step=inp.step,
                kind=inp.kind,
                tool=inp.tool,
                args_json=json.dumps(inp.args, sort_keys=True),
                args_digest=inp.args_digest,
                policy_version=inp.policy_version,
                rule=inp.rule,
                rule_id=inp.approval.rule_id,
                reason=inp.reason,
                assignee_role=inp.approval.assignee_role,
                named_approvers=",".join(inp.approval.named_approvers),
                approvers_required=inp.approval.approvers_required,
                sla_json=json.dumps([e.model_dump() for e in inp.approval.sla]),
                due_at=utcnow() + timedelta(seconds=first_sla) if first_sla is not None else None,
            )
            session.add(cp)
            _set_task_status(session, inp.task_id, inp.tenant_id, "waiting")
            session.flush()
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor="workflow",
                action="checkpoint.opened",
                subject=inp.checkpoint_id,
                reason=inp.reason or f"{inp.tool} needs approval: {inp.rule}",
                data={
                    "kind": inp.kind,
                    "tool": inp.tool,
                    "args_digest": inp.args_digest,
                    "policy_version": inp.policy_version,
                    "rule_id": inp.approval.rule_id,
                },
            )
            notify.enqueue_checkpoint(session, cp, event="opened")

    @implements(RECORD_DECISION)
    async def record_decision(self, inp: CheckpointDecisionRecord) -> Ack:
        if not telemetry.enabled():
            await asyncio.to_thread(self._record_decision, inp)
            return Ack()
        attrs: dict[str, str | int] = {
            "frontdesk.task.id": inp.task_id,
            "frontdesk.checkpoint.id": inp.checkpoint_id,
            "frontdesk.checkpoint.decision": inp.decision,
            "frontdesk.checkpoint.status": inp.resolved_status,
            "frontdesk.checkpoint.round": inp.round,
            "frontdesk.checkpoint.decider": inp.decider_id,
        }
        with telemetry.span("frontdesk.checkpoint.decision", attrs):
            opened = await asyncio.to_thread(self._record_decision, inp)
        if opened is not None:  # the wait, from the checkpoint's opening to this decision
            wait = {k: v for k, v in attrs.items() if k != "frontdesk.checkpoint.decider"}
            telemetry.completed_span("frontdesk.checkpoint.wait", opened, wait)
        return Ack()

    def _record_decision(self, inp: CheckpointDecisionRecord) -> datetime | None:
        """Returns when the checkpoint was opened, when this decision resolved it."""
        with session_scope(self._engine) as session:
            cp = _checkpoint(session, inp.checkpoint_id, inp.tenant_id)
            done = session.exec(
                select(CheckpointDecision).where(
                    CheckpointDecision.checkpoint_id == cp.id,
                    CheckpointDecision.decider_id == inp.decider_id,
                    CheckpointDecision.round == inp.round,
                )
            ).first()
            if done is not None or cp.status != "open":
                return None  # recorded by an earlier attempt, or the task ended (cancelled) meanwhile
            session.add(
                CheckpointDecision(
                    tenant_id=inp.tenant_id,
                    checkpoint_id=cp.id,
                    round=inp.round,
                    decider_id=inp.decider_id,
                    decision=inp.decision,
                    comment=inp.comment or None,
                    edited_args_json=json.dumps(inp.edited_args) if inp.edited_args is not None else None,
                )
            )
            if inp.approvers_required is not None:
                cp.approvers_required = inp.approvers_required
            if inp.edited_args is not None:
                cp.edited_args_json = json.dumps(inp.edited_args, sort_keys=True)
                cp.edit_diff_json = json.dumps(inp.edit_diff or {}, sort_keys=True)
                cp.args_digest = inp.args_digest or cp.args_digest
            if inp.resolved_status != "open":
                cp.status = inp.resolved_status
                cp.decided_by = inp.decider_id
                cp.decided_at = utcnow()
                cp.comment = inp.comment or None
                _resolve_tool_call(session, cp, inp)
                _set_task_status(session, inp.task_id, inp.tenant_id, "running")
            session.add(cp)
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor="system" if inp.decider_id == "system" else f"user:{inp.decider_id}",
                action="checkpoint.decided" if inp.resolved_status != "open" else "checkpoint.approval_added",
                subject=inp.checkpoint_id,
                reason=inp.comment or inp.decision,
                data={
                    "decision": inp.decision,
                    "status": inp.resolved_status,
                    "round": inp.round,
                    "args_digest": cp.args_digest,
                    "policy_version": cp.policy_version,
                    "edit_diff": inp.edit_diff,
                },
            )
            return cp.created_at if inp.resolved_status != "open" else None

    @implements(REAUTHORIZE_EDIT)
    async def reauthorize(self, inp: ReauthorizeInput) -> ReauthorizeResult:
        return await asyncio.to_thread(self._reauthorize, inp)

    def _reauthorize(self, inp: ReauthorizeInput) -> ReauthorizeResult:
        tool = self._catalog.tool(f"{inp.tool}@{inp.tool_version}")
        try:
            args = tool.args_model.model_validate(inp.edited_args)
        except ValidationError as exc:
            return ReauthorizeResult(
                ok=False, reason=f"edited arguments are invalid: {validation_message(exc)}"
            )
        with session_scope(self._engine) as session:
            facts = self._facts(session, inp.tenant_id, tool.spec.side_effect, inp)
        decision = self._policy.decide_tool(
            tenant_id=inp.tenant_id, agent=inp.agent, tool=inp.tool, args=args.model_dump(), facts=facts
        )
        if decision.effect == "deny":
            return ReauthorizeResult(
                ok=False,
                reason=f"edited arguments are refused by policy: {decision.reason}",
                rule_id=decision.rule_id,
            )
        edited = args.model_dump(mode="json")
        diff = {
            key: {"from": inp.original_args.get(key), "to": edited.get(key)}
            for key in sorted(set(inp.original_args) | set(edited))
            if inp.original_args.get(key) != edited.get(key)
        }
        return ReauthorizeResult(
            ok=True,
            reason=decision.reason,
            args=edited,
            args_digest=args_digest(edited),
            diff=diff,
            effect=decision.effect,
            rule_id=decision.rule_id,
            approval=approval_spec(decision.approval),
        )

    @implements(ESCALATE_CHECKPOINT)
    async def escalate(self, inp: EscalateInput) -> Ack:
        await asyncio.to_thread(self._escalate, inp)
        return Ack()

    def _escalate(self, inp: EscalateInput) -> None:
        with session_scope(self._engine) as session:
            cp = _checkpoint(session, inp.checkpoint_id, inp.tenant_id)
            if cp.escalation_level >= inp.level:
                return
            roles = [r for r in cp.extra_roles.split(",") if r]
            cp.extra_roles = ",".join([*roles, *(r for r in inp.add_roles if r not in roles)])
            cp.escalation_level = inp.level
            sla = json.loads(cp.sla_json)
            later = sorted(e["after_seconds"] for e in sla)[inp.level :]
            cp.due_at = cp.created_at + timedelta(seconds=later[0]) if later else None
            session.add(cp)
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor="workflow",
                action="checkpoint.escalated",
                subject=cp.id,
                reason=inp.reason,
                data={"level": inp.level, "added_roles": inp.add_roles},
            )
            metrics.record_escalation(inp.level)
            notify.enqueue_checkpoint(session, cp, event="escalated")

    @implements(RECORD_REASSIGN)
    async def record_reassign(self, inp: ReassignRecord) -> Ack:
        await asyncio.to_thread(self._record_reassign, inp)
        return Ack()

    def _record_reassign(self, inp: ReassignRecord) -> None:
        with session_scope(self._engine) as session:
            cp = _checkpoint(session, inp.checkpoint_id, inp.tenant_id)
            cp.assignee_role = inp.assignee_role
            cp.named_approvers = ",".join(inp.named_approvers)
            session.add(cp)
            event = audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor=f"user:{inp.actor_id}",
                action="checkpoint.reassigned",
                subject=cp.id,
                reason=inp.comment or "reassigned",
                data={"assignee_role": inp.assignee_role, "named_approvers": inp.named_approvers},
            )
            notify.enqueue_checkpoint(
                session, cp, event="reassigned", dedupe_key=f"checkpoint.reassigned:{event.hash}"
            )


def _checkpoint(session: Session, checkpoint_id: str, tenant_id: str) -> Checkpoint:
    cp = session.get(Checkpoint, checkpoint_id)
    if cp is None or cp.tenant_id != tenant_id:
        raise LookupError(f"checkpoint {checkpoint_id} has no row")
    return cp


def _resolve_tool_call(session: Session, cp: Checkpoint, inp: CheckpointDecisionRecord) -> None:
    if not cp.tool_call_id:
        return
    call = session.get(ToolCall, cp.tool_call_id)
    if call is None:
        return
    call.status = cp.status
    if cp.status == "approved" and cp.edited_args_json:
        call.args_json = cp.edited_args_json
        call.args_digest = cp.args_digest
    call.updated_at = utcnow()
    session.add(call)


TASKS = table_of(Task)


def _set_task_status(session: Session, task_id: str, tenant_id: str, status: str) -> None:
    session.connection().execute(  # Core: one statement, the task row is not needed here
        update(TASKS)
        .where(TASKS.c.id == task_id, TASKS.c.tenant_id == tenant_id, TASKS.c.status.in_(("running", "waiting")))
        .values(status=status, updated_at=utcnow())
    )
