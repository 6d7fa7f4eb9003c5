"""Tool activities, one per registered tool (`contracts.run_tool(name)`), and output validation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity

from orchestrator import audit
from orchestrator.budgets.service import BudgetService
from orchestrator.catalog.context import NoSettings, TaskFacts, ToolContext, package_settings, sessions_of
from orchestrator.catalog.registry import Catalog, RegisteredTool, ToolFailure
from orchestrator.contracts import (
    VALIDATE_OUTPUT,
    ToolRunInput,
    ToolRunResult,
    ValidateOutputInput,
    ValidateOutputResult,
    run_tool,
)
from orchestrator.db import session_scope
from orchestrator.evidence import canonical_digest
from orchestrator.models import AuditEvent, Task, ToolCall, utcnow
from orchestrator.settings import Settings
from workers.activities import implements
from workers.activities.governance import validation_message


class ToolActivities:
    def __init__(self, engine: Engine, catalog: Catalog, settings: Settings, budgets: BudgetService) -> None:
        self._engine = engine
        self._catalog = catalog
        self._sessions = sessions_of(engine)
        # A tool sees its own package's settings only, validated here once: a bad value stops the worker.
        tool_packages = {catalog.sources[ref] for ref in catalog.tools if ref in catalog.sources}
        self._package_settings = package_settings(sorted(tool_packages), settings.catalog_settings)
        self._budgets = budgets

    def activities(self) -> list[Callable[..., Any]]:
        """One activity per tool name (every version of a tool shares it; the version is looked up)."""
        names = sorted({t.spec.name for ref, t in self._catalog.tools.items() if "@" in ref})
        return [self._make(name) for name in names] + [self.validate_output]

    def _make(self, name: str) -> Callable[[ToolRunInput], Any]:
        async def run(inp: ToolRunInput) -> ToolRunResult:
            return await self.run(inp)

        return implements(run_tool(name))(run)

    async def run(self, inp: ToolRunInput) -> ToolRunResult:
        """Run an authorized (or approved) call once: its record says whether it already ran."""
        started = await asyncio.to_thread(self._start, inp)
        if started is None:
            outcome = ToolRunResult(ok=False, error="the task was cancelled; the tool did not run")
            await asyncio.to_thread(self._finish, inp, outcome, "cancelled")
            return outcome
        record, facts = started
        tool: RegisteredTool = self._catalog.tool(f"{inp.tool}@{record.tool_version}")
        ctx = ToolContext(
            tenant_id=inp.tenant_id,
            task_id=inp.task_id,
            idempotency_key=inp.idempotency_key,
            facts=facts,
            settings=self._package_settings.get(self._catalog.sources.get(tool.spec.ref, ""), NoSettings()),
            heartbeat=activity.heartbeat,
            sessions=self._sessions,
        )
        try:
            args = tool.args_model.model_validate(inp.args)
            result = await tool.impl(args, ctx)
        except ValidationError as exc:
            outcome = ToolRunResult(ok=False, error=f"arguments are invalid: {validation_message(exc)}")
        except ToolFailure as exc:
            outcome = ToolRunResult(ok=False, error=str(exc))
        else:
            outcome = ToolRunResult(ok=True, result=result)
            if tool.spec.cost_usd:
                await asyncio.to_thread(
                    self._budgets.charge,
                    tenant_id=inp.tenant_id,
                    task_id=inp.task_id,
                    step=inp.step,
                    tool=inp.tool,
                    amount=Decimal(tool.spec.cost_usd),
                    charge_id=inp.idempotency_key,
                )
        await asyncio.to_thread(self._finish, inp, outcome, "succeeded" if outcome.ok else "failed")
        return outcome

    def _start(self, inp: ToolRunInput) -> tuple[ToolCall, TaskFacts] | None:
        """Mark the call running and read what the tool may know of its task, in one transaction;
        None when the task's cancel was requested (nothing may run)."""
        with session_scope(self._engine) as session:
            record = session.get(ToolCall, inp.tool_call_record_id)
            if record is None or record.tenant_id != inp.tenant_id:
                raise LookupError(f"tool call {inp.tool_call_record_id} has no record")
            cancelled = session.exec(
                select(AuditEvent.id).where(
                    AuditEvent.task_id == inp.task_id, AuditEvent.action == "task.cancel_requested"
                )
            ).first()
            if cancelled is not None and record.status != "succeeded":
                return None
            if record.status in ("allowed", "approved"):
                record.status = "running"
                record.updated_at = utcnow()
                session.add(record)
            return record, _facts(session, record)

    def _finish(self, inp: ToolRunInput, outcome: ToolRunResult, status: str) -> None:
        with session_scope(self._engine) as session:
            record = session.get(ToolCall, inp.tool_call_record_id)
            assert record is not None
            if record.status in ("succeeded", "failed", "cancelled"):
                return
            record.status = status
            record.result_json = json.dumps(outcome.result) if outcome.ok else None
            record.result_digest = canonical_digest(outcome.result) if outcome.ok else None
            record.error = outcome.error
            record.updated_at = utcnow()
            session.add(record)
            audit.record(
                session,
                tenant_id=inp.tenant_id,
                task_id=inp.task_id,
                actor=f"tool:{inp.tool}",
                action={"succeeded": "tool.ran", "failed": "tool.failed", "cancelled": "tool.cancelled"}[
                    status
                ],
                subject=inp.tool_call_record_id,
                reason=outcome.error or "ok",
                data={"idempotency_key": inp.idempotency_key, "result_digest": record.result_digest},
            )

    @implements(VALIDATE_OUTPUT)
    async def validate_output(self, inp: ValidateOutputInput) -> ValidateOutputResult:
        model = self._catalog.output_models.get(inp.output_model)
        if model is None:
            return ValidateOutputResult(ok=False, errors=f"output model {inp.output_model} is not registered")
        text = _strip_fences(inp.text)
        try:
            value = model.model_validate_json(text)
        except ValidationError as exc:
            return ValidateOutputResult(ok=False, errors=validation_message(exc))
        return ValidateOutputResult(ok=True, data=value.model_dump(mode="json"))


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    return stripped.strip()


def _facts(session: Session, record: ToolCall) -> TaskFacts:
    """What a tool may know of its task: the workflow, the step, the agent, the data classification."""
    task = session.exec(
        select(Task.workflow_name, Task.workflow_version, Task.definition_json).where(
            Task.id == record.task_id, Task.tenant_id == record.tenant_id
        )
    ).first()
    if task is None:
        raise LookupError(f"tool call {record.id} belongs to no task of its tenant")
    name, version, definition = task
    # Two fields of the pinned definition: read as JSON, not validated as a whole spec.
    classification = json.loads(definition).get("data_classification", "internal")
    return TaskFacts(
        workflow=f"{name}@{version}", step=record.step, agent=record.agent, data_classification=classification
    )
