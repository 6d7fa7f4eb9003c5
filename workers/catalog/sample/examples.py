"""Example requests per sample workflow: what intake trains on (the held-out set is elsewhere)."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "refund_request": [
        "Customer on order ORD-1001 wants a refund of 40 EUR, the parcel arrived damaged.",
        "Please refund order ORD-1002 in full, the customer cancelled.",
    ],
    "summary": ["Summarise this memo for the leadership team: ..."],
    "ticket_triage": ["Ticket TCK-2001: the customer cannot log in since the last update."],
    "contract_review": ["Review this supplier agreement before we sign it: ..."],
    "research_brief": ["Write a research brief on the market for heat pumps in Germany."],
}
