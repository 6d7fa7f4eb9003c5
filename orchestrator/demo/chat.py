"""The chat-completions request as the demo model reads it, and the answer it gives (:class:`Reply`).

Pure helpers shared by :mod:`orchestrator.demo.behaviour` (which picks a behaviour) and the
skills in :mod:`orchestrator.demo.skills`: both import this module, and it imports neither, so
the behaviour can dispatch to the skills without an import cycle.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

REPAIR_PREFIX = "Your previous answer was not valid"
LOOKUP, REFUND = "lookup_order", "issue_refund"

_ORDER_RE = re.compile(r"\bORD-\d+\b")
_NUM = r"(?<![\w-])(\d+(?:[.,]\d{1,2})?)"
_CUR = r"(EUR|€|euros?|USD|\$|GBP|£)"
_AMOUNT_AFTER_RE = re.compile(_NUM + r"\s*" + _CUR, re.IGNORECASE)
_AMOUNT_BEFORE_RE = re.compile(r"(€|\$|£)\s*" + _NUM)
_CURRENCIES = {"eur": "EUR", "€": "EUR", "euro": "EUR", "euros": "EUR", "usd": "USD", "$": "USD"}
_CURRENCIES |= {"gbp": "GBP", "£": "GBP"}
_FAILED = {"denied", "rejected", "failed", "error", "not_found"}


@dataclass(frozen=True)
class Reply:
    """One assistant answer: JSON/plain text, or tool calls (``arguments`` is JSON text)."""

    content: str | None = None
    tool_calls: list[dict[str, str]] = field(default_factory=list)


# --- reading the request ----------------------------------------------------------------------


def text_of(content: Any) -> str:
    """The text of a message content: a string or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def user_text(messages: list[dict[str, Any]]) -> str:
    """All user messages joined, without the repair prompts Frontdesk adds."""
    texts = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    return "\n".join(t for t in texts if t and not t.lstrip().startswith(REPAIR_PREFIX))


def is_repair_turn(messages: list[dict[str, Any]]) -> bool:
    users = [m for m in messages if m.get("role") == "user"]
    return bool(users) and text_of(users[-1].get("content")).lstrip().startswith(REPAIR_PREFIX)


def output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
    return schema if isinstance(schema, dict) else None


def offered_tools(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
    return names


def canonical(name: str) -> str:
    return next((base for base in (LOOKUP, REFUND) if name.startswith(base)), name)


def parse_json_object(text: str) -> dict[str, Any]:
    """A tool result as a dict: JSON objects as they are, anything else wrapped."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def tool_history(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(canonical tool name, call arguments, parsed result) for every answered tool call, in order."""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    history = []
    for msg in messages:
        asked = msg.get("tool_calls") if msg.get("role") == "assistant" else None
        for call in [c for c in asked or [] if isinstance(c, dict)]:
            fn = call.get("function") or call
            calls[str(call.get("id"))] = (str(fn.get("name", "")), parse_json_object(fn.get("arguments", "")))
        if msg.get("role") == "tool":
            name, args = calls.get(str(msg.get("tool_call_id")), (str(msg.get("name", "")), {}))
            history.append((canonical(name), args, parse_json_object(text_of(msg.get("content")))))
    return history


def last_result(history: list[tuple[str, dict[str, Any], dict[str, Any]]], name: str) -> tuple | None:
    found = [entry for entry in history if entry[0] == name]
    return found[-1] if found else None


# --- small text helpers -------------------------------------------------------------------------


def find_order_id(text: str) -> str | None:
    match = _ORDER_RE.search(text)
    return match.group(0) if match else None


def money(value: Any) -> str | None:
    """A positive-or-zero amount as a two-decimal string, or None if it is not a number."""
    try:
        amount = Decimal(str(value).replace(",", ".").strip())
    except (InvalidOperation, ValueError):
        return None
    return str(amount.quantize(Decimal("0.01"))) if amount.is_finite() and amount >= 0 else None


def find_amount(text: str) -> tuple[str, str] | None:
    """(amount, currency) the user named, e.g. "40 EUR", "12,50 €" or "$30"."""
    after, before = _AMOUNT_AFTER_RE.search(text), _AMOUNT_BEFORE_RE.search(text)
    candidates = [(m.start(), m.group(1), m.group(2)) for m in [after] if m]
    candidates += [(m.start(), m.group(2), m.group(1)) for m in [before] if m]
    if not candidates:
        return None
    _, number, currency = min(candidates)
    amount = money(number)
    return (amount, _CURRENCIES.get(currency.lower(), "EUR")) if amount else None


def sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s for s in re.split(r"(?<=[.!?])\s+", flat) if s]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def call_id(messages: list[dict[str, Any]], index: int) -> str:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()
    return f"call_demo_{digest[:16]}_{index}"


def is_failure(result: dict[str, Any]) -> bool:
    """Whether a tool result reports a failure (an error, a refusal, "not found")."""
    if "error" in result:
        return True
    if str(result.get("status", "")).lower() in _FAILED:
        return True
    text = str(result.get("text", ""))
    return bool(re.search(r"\b(error|denied|rejected|failed|not found)\b", text, re.IGNORECASE))
