"""The floor's workflow, activity and update payloads: plain dataclasses (temporalio's default
JSON converter), kept to what each step needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FloorInput:
    task_id: str
    tenant_id: str
    text: str


@dataclass
class ModelCallIn:
    tenant_id: str
    request_id: str
    messages: list[dict[str, Any]]


@dataclass
class ToolIn:
    tenant_id: str
    task_id: str
    idempotency_key: str
    arguments: str  # the model's JSON text, validated by the activity


@dataclass
class Decision:
    approve: bool
    by: str = ""
    comment: str = ""


@dataclass
class FloorResult:
    output: dict[str, Any] | None
    turns: int
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
