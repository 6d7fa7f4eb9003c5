"""Activities of governance: authorize a tool call, open and decide checkpoints.

Policy decisions happen in the policy engine, here, never in workflow code (casbin reads
files, and workflow code must be deterministic).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity

from orchestrator import audit
from orchestrator.db import session_scope
from orchestrator.models import Checkpoint, Task, ToolCall, utcnow
from orchestrator.policy import PolicyEngine
from workers.catalog.registry import Catalog
from workers.domain import (
    Ack,
    AuthorizeToolInput,
    AuthorizeToolResult,
    CheckpointDecisionRecord,
    CheckpointOpenInput,
)


def args_digest(args: dict[str, Any]) -> str:
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validation_message(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors())


class GovernanceActivities:
    def __init__(self, engine: Engine, policy: PolicyEngine, catalog: Catalog) -> None:
        self._engine = engine
        self._policy = policy
        self._catalog = catalog

    @activity.defn(name="policy.authorize_tool")
    async def authorize_tool(self, inp: AuthorizeToolInput) -> AuthorizeToolResult:
        return await asyncio.to_thread(self._authorize, inp)

    def _decide(self, inp: AuthorizeToolInput) -> tuple[AuthorizeToolResult, str]:
        """Validate the arguments, then ask the policy engine. Returns (result, record status)."""
        version = self._policy.version
        raw_digest = hashlib.sha256(inp.arguments.encode()).hexdigest()

        def refuse(reason: str, status: str) -> tuple[AuthorizeToolResult, str]:
            return (
                AuthorizeToolResult(
                    tool_call_record_id=inp.record_id,
                    effect="deny",
                    policy_version=version,
                    rule="",
                    reason=reason,
                    args_digest=raw_digest,
                ),
                status,
            )

        if inp.tool_version is None:
            return refuse(f"agent {inp.agent!r} may not ask for tool {inp.tool!r}", "denied")
        try:
            tool = self._catalog.tool(f"{inp.tool}@{inp.tool_version}")
        except ValueError:
            return refuse(f"tool {inp.tool}@{inp.tool_version} is not in this worker's catalog", "denied")
        try:
            parsed = json.loads(inp.arguments or "{}")
            args_model = tool.args_model.model_validate(parsed)
        except json.JSONDecodeError as exc:
            return refuse(f"arguments are not valid JSON: {exc.msg}", "invalid")
        except ValidationError as exc:
            return refuse(f"arguments are invalid: {validation_message(exc)}", "invalid")
        decision = self._policy.decide_tool(
            tenant_id=inp.tenant_id, agent=inp.agent, tool=inp.tool, args=args_model.model_dump()
        )
        args_json = args_model.model_dump(mode="json")
        status = {"allow": "allowed", "approve": "awaiting_approval", "deny": "denied"}[decision.effect]
        return (
            AuthorizeToolResult(
                tool_call_record_id=inp.record_id,
                effect=decision.effect,
                policy_version=decision.policy_version,
                rule=decision.rule,
                reason=decision.reason,
                args=args_json,
                args_digest=args_digest(args_json),
            ),
            status,
        )

    def _authorize(self, inp: AuthorizeToolInput) -> AuthorizeToolResult:
        with session_scope(self._engine) as session:
            existing = session.get(ToolCall, inp.record_id)
            if existing is not None:  # a retried activity: the first decision stands
                return AuthorizeToolResult(
                    tool_call_record_id=existing.id,
                    effect=existing.effect,  # type: ignore[arg-type]
                    policy_version=existing.policy_version,
                    rule=existing.rule,
                    reason=existing.reason,
                    args=json.loads(existing.args_json) if existing.status != "invalid" else None,
                    args_digest=existing.args_digest,
                )
            result, status = self._decide(inp)
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
                    reason=result.reason,
                    status=status,
                    idempotency_key=inp.record_id,
                )
            )
            session.flush()
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor=f"agent:{inp.agent}",
                action={"allow": "tool.allowed", "approve": "tool.approval_required", "deny": "tool.denied"}[
                    result.effect
                ],
                subject=f"{inp.tool}:{inp.record_id}",
                reason=result.reason,
                data={
                    "policy_version": result.policy_version,
                    "rule": result.rule,
                    "args_digest": result.args_digest,
                },
            )
            return result

    @activity.defn(name="checkpoint.open")
    async def open_checkpoint(self, inp: CheckpointOpenInput) -> Ack:
        await asyncio.to_thread(self._open, inp)
        return Ack()

    def _open(self, inp: CheckpointOpenInput) -> None:
        with session_scope(self._engine) as session:
            if session.get(Checkpoint, inp.checkpoint_id) is not None:
                return
            session.add(
                Checkpoint(
                    id=inp.checkpoint_id,
                    tenant_id=inp.tenant_id,
                    task_id=inp.task_id,
                    tool_call_id=inp.tool_call_record_id,
                    requester_id=inp.requester_id,
                    step=inp.step,
                    tool=inp.tool,
                    args_json=json.dumps(inp.args, sort_keys=True),
                    args_digest=inp.args_digest,
                    policy_version=inp.policy_version,
                    rule=inp.rule,
                    assignee_role=inp.assignee_role,
                )
            )
            _set_task_status(session, inp.task_id, inp.tenant_id, "waiting")
            session.flush()
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor="workflow",
                action="checkpoint.opened",
                subject=inp.checkpoint_id,
                reason=f"{inp.tool} needs approval: {inp.rule}",
                data={"tool": inp.tool, "args_digest": inp.args_digest, "policy_version": inp.policy_version},
            )

    @activity.defn(name="checkpoint.record_decision")
    async def record_decision(self, inp: CheckpointDecisionRecord) -> Ack:
        await asyncio.to_thread(self._record_decision, inp)
        return Ack()

    def _record_decision(self, inp: CheckpointDecisionRecord) -> None:
        with session_scope(self._engine) as session:
            cp = session.get(Checkpoint, inp.checkpoint_id)
            if cp is None or cp.tenant_id != inp.tenant_id:
                raise LookupError(f"checkpoint {inp.checkpoint_id} has no row")
            if cp.status != "open":
                return  # already recorded by an earlier attempt
            cp.status = "approved" if inp.decision == "approve" else "rejected"
            cp.decided_by = inp.decider_id
            cp.decided_at = utcnow()
            cp.comment = inp.comment or None
            session.add(cp)
            if cp.tool_call_id:
                call = session.get(ToolCall, cp.tool_call_id)
                if call is not None:
                    call.status = cp.status
                    call.updated_at = utcnow()
                    session.add(call)
            _set_task_status(session, inp.task_id, inp.tenant_id, "running")
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor=f"user:{inp.decider_id}",
                action="checkpoint.decided",
                subject=inp.checkpoint_id,
                reason=inp.comment or inp.decision,
                data={
                    "decision": inp.decision,
                    "args_digest": cp.args_digest,
                    "policy_version": cp.policy_version,
                },
            )


def _set_task_status(session: Session, task_id: str, tenant_id: str, status: str) -> None:
    task = session.exec(select(Task).where(Task.id == task_id, Task.tenant_id == tenant_id)).first()
    if task is not None and task.status in ("running", "waiting"):
        task.status = status
        task.updated_at = utcnow()
        session.add(task)
