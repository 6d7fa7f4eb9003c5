"""Agents and workflows of the sample catalog."""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec
from orchestrator.demo.catalog import tools
from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.demo.catalog.models import (
    IssueRefundArgs,
    LookupOrderArgs,
    RefundDecision,
    SendEmailArgs,
    Summary,
)

REFUND_INSTRUCTIONS = """You are the refunds specialist of a web shop.
1. Look the order up with `lookup_order`.
2. If the request is justified and the amount does not exceed the order's refundable amount,
   issue the refund with `issue_refund` (the amount the customer asked for, or the full
   refundable amount if they named none).
3. Answer with the decision as JSON. If a refund was rejected or denied, the action is
   `declined` and the customer message explains that a person will follow up."""

SUMMARY_INSTRUCTIONS = """You summarise business documents for busy colleagues.
Give a short title, a summary of at most five sentences and one to five key points."""


def register(catalog: Catalog) -> None:
    catalog.add_tool(
        "lookup_order",
        "1",
        description="Look up an order by its number: customer, amount, currency, status, refundable amount.",
        side_effect="read",
        args_model=LookupOrderArgs,
        impl=tools.lookup_order,
    )
    catalog.add_tool(
        "issue_refund",
        "1",
        description="Refund money to the customer of an order. Irreversible.",
        side_effect="irreversible",
        args_model=IssueRefundArgs,
        impl=tools.issue_refund,
    )
    catalog.add_tool(
        "send_email",
        "1",
        description="Send an e-mail (queued in the outbox). Mail outside the company needs approval.",
        side_effect="write",
        args_model=SendEmailArgs,
        impl=tools.send_email,
        cost_usd="0.0005",
    )
    catalog.add_agent(
        name="refund_agent",
        version="1",
        instructions=REFUND_INSTRUCTIONS,
        tier="tier-frontier",
        tools=["lookup_order@1", "issue_refund@1", "send_email@1"],
        max_turns=6,
        max_tokens=800,
        output_model=RefundDecision,
    )
    catalog.add_agent(
        name="summary_agent",
        version="1",
        instructions=SUMMARY_INSTRUCTIONS,
        tier="tier-slm",
        tools=[],
        max_turns=2,
        max_tokens=600,
        output_model=Summary,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="refund_request",
            version="1",
            description=(
                "A customer asks for money back on an order; refunds above the threshold need approval."
            ),
            category="customer-service",
            risk_class="high",
            data_classification="internal",
            steps=[StepSpec(name="handle_refund", agent="refund_agent@1")],
            examples=EXAMPLES["refund_request"],
        )
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="summary",
            version="1",
            description="Summarise a text: title, short summary and key points.",
            category="knowledge-work",
            risk_class="low",
            data_classification="internal",
            steps=[StepSpec(name="summarise", agent="summary_agent@1")],
            examples=EXAMPLES["summary"],
        )
    )
