"""Demo skill of ``refund_request@2``'s customer e-mail step (the ``CustomerEmail`` schema).

Deterministic and pure (no I/O). It reads the refund agent's decision from the earlier results
the engine passes on (``Results so far:`` + JSON keyed by step name; a decision is any object
with ``order_id`` and ``action``) and writes the e-mail to the order's customer mailbox
``orders+<ORDER_ID>@example.com`` (the shop's outbound relay delivers it to the customer of the
order). The body states the outcome plainly: the amount refunded, or that the refund was not made
and a colleague follows up.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.demo.chat import Reply, find_order_id, money
from orchestrator.demo.skills.research import earlier_results, request_text

SIGNATURE = "Kind regards,\nCustomer Service"


def customer_address(order_id: str | None) -> str:
    return f"orders+{order_id}@example.com" if order_id else "orders@example.com"


def refund_decision(body: dict[str, Any]) -> dict[str, Any] | None:
    """The latest refund decision among the earlier results, if any."""
    decisions = [v for _, v in earlier_results(body) if "order_id" in v and "action" in v]
    return decisions[-1] if decisions else None


def email_answer(body: dict[str, Any]) -> dict[str, Any]:
    decision = refund_decision(body) or {}
    order_id = str(decision.get("order_id") or "") or find_order_id(request_text(body))
    if order_id == "unknown":
        order_id = None
    action = str(decision.get("action") or "escalated")
    amount = money(decision.get("amount")) or "0.00"
    currency = str(decision.get("currency") or "EUR")
    message = " ".join(str(decision.get("customer_message") or "").split())
    order = f"order {order_id}" if order_id else "your order"
    if action == "refunded":
        subject = f"Your refund of {amount} {currency} for {order}"
        outcome = (
            f"we have refunded {amount} {currency} for {order} to your original payment method. "
            "It should reach you within a few days."
        )
    elif action == "declined":
        subject = f"About your refund request for {order}"
        outcome = f"we could not refund {order} as requested. A colleague will contact you about it."
    else:
        subject = f"We are looking into your refund request for {order}"
        outcome = f"a colleague is reviewing your refund request for {order} and will follow up shortly."
    paragraphs = ["Dear customer,", f"Thank you for getting in touch: {outcome}"]
    if message and action != "refunded":  # a refund speaks for itself; a refusal needs its reason
        paragraphs.append(message)
    paragraphs.append(SIGNATURE)
    return {"to": customer_address(order_id), "subject": subject, "body": "\n\n".join(paragraphs)}


def email_skill(body: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps(email_answer(body)))


SKILLS: dict[str, Any] = {"CustomerEmail": email_skill}
