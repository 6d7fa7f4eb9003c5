"""One preview of a task request, for the REST API and the web pages alike."""

from __future__ import annotations

from typing import Any

from orchestrator import task_service
from orchestrator.api.schemas import TaskCreate
from orchestrator.api.state import AppState
from orchestrator.preview import preview


def preview_request(state: AppState, tenant_id: str, body: TaskCreate) -> dict[str, Any]:
    """What `body` would run, need and cost: the workflow (named, or picked by intake with its
    confidence and the runners-up), its steps and tools with the decisions the policies could
    give, the checkpoints it will or may need, and a budget estimate. Nothing is written."""
    intake = None
    ref = body.workflow
    if ref is None:
        result = state.intake.classify(body.input)
        ref = task_service.pick_workflow(state, body.input)
        intake = {
            "picked": ref,
            "confidence": round(result.confidence, 3),
            "options": [{"workflow": r, "confidence": round(p, 3)} for r, p in result.ranked],
        }
    spec = task_service.pin(state, ref)
    return preview(state, tenant_id, body, spec, intake)
