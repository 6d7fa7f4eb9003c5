"""Sample catalog: support ticket triage.

The intent is classified on the cheapest tier; an answer the triage agent is not sure of
(confidence under 0.7) climbs the ladder to the frontier tier. A writer drafts the reply on an
open-weights tier, a person reviews it when the topic is regulated (privacy, legal), and the
ticket is answered in the helpdesk by a tool step.
"""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec, ValidatorSpec
from orchestrator.demo.catalog import support_tools
from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.demo.catalog.support_models import (
    DraftReply,
    LookupTicketArgs,
    TriageResult,
    UpdateTicketArgs,
)

TRIAGE_INSTRUCTIONS = """You triage customer support tickets of a software company.
1. If the request names a ticket (TCK-…), read it with `lookup_ticket`.
2. Classify the intent: login, billing, bug, account (plans, seats, settings), privacy
   (personal data, GDPR requests) or other.
3. `regulated` is true for privacy and data-protection requests and for legal threats.
4. `confidence` is how sure you are of the intent (0 to 1): be honest when the ticket is vague
   or mixes several topics. Summarise the customer's problem in one or two sentences."""

WRITER_INSTRUCTIONS = """You write replies to customer support tickets.
Use the triage result (intent, summary, customer) to draft a friendly, specific reply: what we
will do, what the customer should do, and by when. Never promise refunds or data deletion that
has not been confirmed; for privacy requests, acknowledge the request and the legal deadline.
Give a subject line, the body, and how confident you are that the reply resolves the ticket."""


def register(catalog: Catalog) -> None:
    catalog.add_tool(
        "lookup_ticket",
        "1",
        description="Read a support ticket by its number: customer, subject, body, status.",
        side_effect="read",
        args_model=LookupTicketArgs,
        impl=support_tools.lookup_ticket,
    )
    catalog.add_tool(
        "update_ticket",
        "1",
        description="Answer a support ticket: set its status and intent and store the reply sent.",
        side_effect="write",
        args_model=UpdateTicketArgs,
        impl=support_tools.update_ticket,
    )
    catalog.add_agent(
        name="support_triage",
        version="1",
        instructions=TRIAGE_INSTRUCTIONS,
        tier="tier-slm",
        tiers=["tier-slm", "tier-frontier"],
        validator=ValidatorSpec(kind="confidence", field="confidence", threshold=0.7),
        tools=["lookup_ticket@1"],
        max_turns=4,
        max_tokens=500,
        output_model=TriageResult,
    )
    catalog.add_agent(
        name="support_writer",
        version="1",
        instructions=WRITER_INSTRUCTIONS,
        tier="tier-open",
        tools=[],
        max_turns=2,
        max_tokens=900,
        output_model=DraftReply,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="ticket_triage",
            version="1",
            description=(
                "Triage a customer support ticket, draft the reply and answer the ticket; "
                "privacy and legal topics are reviewed by a person first."
            ),
            category="customer-service",
            risk_class="medium",
            data_classification="internal",
            steps=[
                StepSpec(name="triage", agent="support_triage@1"),
                StepSpec(name="draft", agent="support_writer@1"),
                StepSpec(
                    name="regulated_review",
                    kind="checkpoint",
                    review="output_review",
                    assignee_role="approver",
                    when="steps.triage.regulated",
                ),
                StepSpec(
                    name="update",
                    kind="tool",
                    tool="update_ticket@1",
                    args={
                        "ticket_id": "{steps.triage.ticket_id}",
                        "status": "answered",
                        "intent": "{steps.triage.intent}",
                        "reply": "{steps.draft.body}",
                    },
                ),
            ],
            examples=EXAMPLES["ticket_triage"],
            max_task_turns=12,
            default_budget_usd="0.50",
        )
    )
