"""The refund agent's request as Frontdesk sends it (instructions, output schema, tools), built from
the sample catalog's own definitions so the floor asks the demo model exactly the same thing."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.demo.catalog.definitions import REFUND_INSTRUCTIONS
from orchestrator.demo.catalog.models import IssueRefundArgs, LookupOrderArgs, RefundDecision, SendEmailArgs

TIER = "tier-frontier"  # refund_agent@1's tier
MAX_TOKENS = 800  # refund_agent@1's max_tokens
MAX_TURNS = 6  # refund_agent@1's max_turns
OUTPUT_SCHEMA: dict[str, Any] = RefundDecision.model_json_schema()

SYSTEM_PROMPT = (
    f"{REFUND_INSTRUCTIONS}\n\nWhen you give your final answer, reply with only a JSON object "
    f"that matches this JSON schema:\n{json.dumps(OUTPUT_SCHEMA, sort_keys=True)}"
)

_TOOLS = [
    ("lookup_order", "Look up an order by its number: customer, amount, currency, status, refundable amount.",
     LookupOrderArgs),
    ("issue_refund", "Refund money to the customer of an order. Irreversible.", IssueRefundArgs),
    ("send_email", "Send an e-mail (queued in the outbox). Mail outside the company needs approval.",
     SendEmailArgs),
]  # fmt: skip
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {"name": name, "description": text, "parameters": model.model_json_schema()},
    }
    for name, text, model in _TOOLS
]


def request_body(messages: list[dict[str, Any]], tenant_id: str) -> dict[str, Any]:
    """The chat-completions body: the same fields Frontdesk's router client sends, minus the routing
    metadata (tenant, task, step, tags) that only a governed call carries."""
    return {
        "model": TIER,
        "messages": messages,
        "max_tokens": MAX_TOKENS,
        "user": tenant_id,
        "tools": TOOLS,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": OUTPUT_SCHEMA},
        },
    }
