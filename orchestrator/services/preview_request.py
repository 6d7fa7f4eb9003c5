"""One preview of a task request, for the REST API and the web pages alike."""

from __future__ import annotations

from typing import Any

from orchestrator.policy.rules import ALL_TENANTS
from orchestrator.services import tasks as task_service
from orchestrator.services.preview import preview
from orchestrator.services.schemas import TaskCreate
from orchestrator.services.state import AppState


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
    return with_decisions(state, tenant_id, preview(state, tenant_id, body, spec, intake))


def with_decisions(state: AppState, tenant_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Beside each tool's `likely` summary, the rules behind it (id, effect, condition): "depends
    on the arguments" only helps a person who can see that, say, under 100 is allowed, from 100
    needs approval and above 1000 is denied. Guard rules can only add an approval."""
    rules = {r.rule_id: r for r in state.policy.view().rules if r.tenant in (ALL_TENANTS, tenant_id)}
    for step in result["steps"]:
        for tool in step.get("tools", []):
            tool["decisions"] = [
                {"rule_id": r.rule_id, "effect": r.effect, "condition": r.condition, "guard": r.guard}
                for r in (rules.get(rule_id) for rule_id in tool["rules"])
                if r is not None
            ]
    return result
