"""Sample catalog: ``refund_request@2``, the refund with a customer e-mail sent through the outbox.

Steps:

1. ``handle_refund`` — ``refund_agent@1`` as in ``refund_request@1``: order lookup, refund (approval
   above the threshold, denied above the limit), a decision.
2. ``customer_email`` — ``customer_emailer@1`` (frontier tier, no tools) drafts the e-mail from the
   decision in the results so far.
3. ``send`` — a tool step: ``send_email@1`` with the draft's fields, authorized for the agent
   ``workflow:refund_request`` (policy rule ``refund-customer-email``); it queues the e-mail in the
   ``email_outbox`` table.

The address: the refund decision does not carry the customer's e-mail and ``lookup_order`` does not
return one, so the e-mail goes to the order's customer mailbox ``orders+<ORDER_ID>@example.com``,
the shop's outbound relay convention (the relay maps it to the customer of that order).

A refund an approver *rejects* at the checkpoint ends the task ``rejected`` at the first step, so no
e-mail is drafted or sent: the person who rejected it owns the conversation with the customer (the
decision's customer message says a colleague will follow up). A refund the agent declines on its
own (order not found, not refundable, over the policy limit) completes the first step, and the
e-mail tells the customer it was declined.

``refund_request@1`` stays registered unchanged (in-flight tasks pin it); ``@2`` is the latest.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec
from orchestrator.demo.catalog.examples import EXAMPLES

CUSTOMER_MAILBOX = "orders+{order_id}@example.com"

EMAILER_INSTRUCTIONS = f"""You write the e-mail to a web shop's customer about their refund request.
The refund decision is in the results so far: order_id, action (refunded, declined or escalated),
amount, currency and the message for the customer.
- Address it to the order's customer mailbox: {CUSTOMER_MAILBOX} (the shop's relay delivers it).
- Subject: short, naming the order. Body: greet the customer, state the outcome plainly (the amount
  refunded, or that the refund was not made and a colleague will follow up), sign as Customer Service.
- Promise nothing the decision does not say; never include internal notes.
Answer with the e-mail as JSON: to, subject, body."""


class CustomerEmail(BaseModel):
    """An e-mail to a customer; its fields feed the ``send_email`` tool step as they are."""

    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10000)


def register(catalog: Catalog) -> None:
    """Needs `lookup_order@1`, `issue_refund@1`, `send_email@1` and `refund_agent@1` (definitions)."""
    catalog.add_agent(
        name="customer_emailer",
        version="1",
        instructions=EMAILER_INSTRUCTIONS,
        tier="tier-frontier",
        tools=[],
        max_turns=2,
        max_tokens=800,
        output_model=CustomerEmail,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="refund_request",
            version="2",
            description=(
                "A customer asks for money back on an order; refunds above the threshold need approval; "
                "the customer is told the outcome by e-mail."
            ),
            category="customer-service",
            risk_class="high",
            data_classification="internal",
            steps=[
                StepSpec(name="handle_refund", agent="refund_agent@1"),
                StepSpec(name="customer_email", agent="customer_emailer@1"),
                StepSpec(
                    name="send",
                    kind="tool",
                    tool="send_email@1",
                    args={
                        "to": "{steps.customer_email.to}",
                        "subject": "{steps.customer_email.subject}",
                        "body": "{steps.customer_email.body}",
                    },
                ),
            ],
            examples=list(EXAMPLES["refund_request"]),
        )
    )
