"""The pinned definition of a task, read by activities that need more of it than their input
carries: the model turn offers the agent's tools and asks for its output schema from here, so the
workflow does not send them (about 2.4 KB per turn for the refund agent) in every turn's input."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy.engine import Engine

from orchestrator.contracts import AgentSpec, ToolSpec, WorkflowSpec
from orchestrator.db import session_scope
from orchestrator.models import Task


@dataclass(frozen=True)
class PinnedAgent:
    tools: list[ToolSpec]  # offered to the model
    output_schema: dict[str, Any]
    tool_versions: dict[str, str]  # tool name -> the version the agent may call


class PinnedDefinitions:
    """Definitions by task, read once per task and kept for the `size` most recent tasks (a
    pinned definition never changes, so a kept one is never stale)."""

    def __init__(self, engine: Engine, size: int = 256) -> None:
        self._engine = engine
        self._size = size
        self._kept: OrderedDict[str, WorkflowSpec] = OrderedDict()
        self._lock = Lock()  # activities run on several threads

    def agent(self, tenant_id: str, task_id: str, agent_ref: str) -> PinnedAgent:
        """What `agent_ref` is offered and asked for, as the task pinned it."""
        spec = self._definition(tenant_id, task_id)
        agent: AgentSpec | None = spec.agents.get(agent_ref)
        if agent is None:
            raise LookupError(f"agent {agent_ref} is not in the pinned definition of task {task_id}")
        return PinnedAgent(
            tools=[spec.tools[ref.split("@", 1)[0]] for ref in agent.tools],
            output_schema=agent.output_schema,
            tool_versions={ref.split("@", 1)[0]: ref.split("@", 1)[1] for ref in agent.tools},
        )

    def _definition(self, tenant_id: str, task_id: str) -> WorkflowSpec:
        with self._lock:
            if (kept := self._kept.get(task_id)) is not None:
                self._kept.move_to_end(task_id)
                return kept
        with session_scope(self._engine) as session:
            task = session.get(Task, task_id)
            if task is None or task.tenant_id != tenant_id:
                raise LookupError(f"task {task_id} of tenant {tenant_id} has no row")
            spec = WorkflowSpec.model_validate_json(task.definition_json)
        with self._lock:
            self._kept[task_id] = spec
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return spec
