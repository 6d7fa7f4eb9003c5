"""A test catalog standing for a later deploy: a new refund agent version on another tier and a
new refund workflow version that uses it (tests/integration/test_version_pinning.py)."""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec
from orchestrator.demo.catalog.models import RefundDecision


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="refund_agent",
        version="7",
        instructions="You are the refunds specialist (deployed later, cheaper tier).",
        tier="tier-slm",
        tools=["lookup_order@1", "issue_refund@1"],
        max_turns=6,
        max_tokens=600,
        output_model=RefundDecision,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="refund_request",
            version="9",
            description="Refunds, as deployed later.",
            steps=[StepSpec(name="handle_refund", agent="refund_agent@7")],
            examples=["Refund order ORD-1 please", "Customer wants money back for ORD-2"],
        )
    )
