"""A test catalog: the refund agent, at a test-only version, allowed hundreds of turns, so a
hostile scripted model can ask for anything for a long time. Loaded by tests that name it in
`FRONTDESK_CATALOG_PACKAGES`; the shipped policies apply to it unchanged (it is `refund_agent`)."""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec
from orchestrator.demo.catalog.models import RefundDecision


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="refund_agent",
        version="0",  # below the sample's @1, so `refund_agent` still means the sample one
        instructions="(scripted by the test)",
        tier="tier-slm",
        tools=["lookup_order@1", "issue_refund@1", "send_email@1"],
        max_turns=400,
        max_tokens=200,
        output_model=RefundDecision,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="hostile_refunds",
            version="1",
            description="test only",
            steps=[StepSpec(name="handle", agent="refund_agent@0")],
            max_task_turns=400,
        )
    )
