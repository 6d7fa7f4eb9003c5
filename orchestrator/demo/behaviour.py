"""Pure behaviour of the offline demo model (deterministic, not an LLM).

Every function here maps an OpenAI chat-completions request (plain dicts, as received) to an
answer without I/O, clocks or randomness, so the same request always gets the same answer and
the same usage. The HTTP side lives in :mod:`orchestrator.demo.model`.

Behaviours, chosen by :func:`default_reply`:

* refund agent (``lookup_order`` / ``issue_refund`` offered, or a refund-decision schema):
  look the order up, issue the refund, then answer with the decision;
* summary agent (schema with ``title``, ``summary``, ``key_points``): sentences of the user text;
* any other JSON schema: a value built from the schema alone (:func:`fill_schema`);
* no schema: a short plain-text answer labelled as coming from the demo model.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from orchestrator.demo.chat import (
    LOOKUP,
    REFUND,
    Reply,
    call_id,
    canonical,
    clip,
    find_amount,
    find_order_id,
    is_failure,
    last_result,
    money,
    offered_tools,
    output_schema,
    sentences,
    tool_history,
    user_text,
)
from orchestrator.demo.skills import registry

_SUCCEEDED = {"refunded", "succeeded", "success", "completed", "issued", "ok"}
_NOT_REFUNDABLE = {"refunded", "fully_refunded", "cancelled", "canceled", "not_refundable", "unpaid"}
_FOLLOW_UP = "A colleague will review your request and follow up with you shortly."


# --- the refund agent ---------------------------------------------------------------------------


def _order_facts(result: dict[str, Any]) -> dict[str, Any]:
    nested = result.get("order")
    return {**result, **nested} if isinstance(nested, dict) else result


def _decision(
    order_id: str, currency: str, message: str, action: str = "declined", amount: str = "0.00"
) -> Reply:
    answer = {"order_id": order_id, "action": action, "amount": amount, "currency": currency}
    return Reply(content=json.dumps({**answer, "customer_message": message}))


def refund_reply(messages: list[dict[str, Any]], tools: list[str]) -> Reply:
    """The next move of the refund agent, from the conversation so far."""
    text, history = user_text(messages), tool_history(messages)
    named = find_amount(text)
    currency = named[1] if named else "EUR"
    lookup = last_result(history, LOOKUP)
    order_id = str((lookup[1].get("order_id") if lookup else None) or find_order_id(text) or "")
    if not order_id:
        ask = "Please send us your order number (for example ORD-1001) so we can check it."
        return _decision("unknown", currency, ask)
    if lookup is None:
        return _tool_call(messages, tools, LOOKUP, {"order_id": order_id}, currency)
    order = _order_facts(lookup[2])
    currency = str(order.get("currency") or currency)
    if is_failure(order):
        return _decision(order_id, currency, f"We could not find order {order_id}. Please check the number.")
    refundable = money(order.get("refundable_amount"))
    status = str(order.get("status", "")).lower()
    if status in _NOT_REFUNDABLE or order.get("refundable") is False or refundable == "0.00":
        return _decision(order_id, currency, f"Order {order_id} cannot be refunded (status: {status}).")
    refund = last_result(history, REFUND)
    if refund is None:
        amount = named[0] if named else refundable
        if amount is None:
            return _decision(order_id, currency, _FOLLOW_UP, action="escalated")
        reason = clip(" ".join(text.split()), 200) or "Customer request"
        args = {"order_id": order_id, "amount": amount, "currency": currency, "reason": reason}
        return _tool_call(messages, tools, REFUND, args, currency)
    _, args, result = refund
    succeeded = "refund_id" in result or str(result.get("status", "")).lower() in _SUCCEEDED
    if is_failure(result) or not succeeded:
        return _decision(
            order_id, currency, f"We could not refund order {order_id} automatically. {_FOLLOW_UP}"
        )
    amount = money(result.get("amount")) or money(args.get("amount")) or "0.00"
    currency = str(result.get("currency") or args.get("currency") or currency)
    done = (
        f"We have refunded {amount} {currency} for order {order_id}. It should reach you within a few days."
    )
    return _decision(order_id, currency, done, action="refunded", amount=amount)


def _tool_call(
    messages: list[dict[str, Any]], tools: list[str], name: str, args: dict[str, Any], currency: str
) -> Reply:
    offered = next((t for t in tools if canonical(t) == name), None)
    if offered is None:  # e.g. a last turn without tools: hand over instead of guessing
        return _decision(str(args["order_id"]), currency, _FOLLOW_UP, action="escalated")
    return Reply(tool_calls=[{"id": call_id(messages, 0), "name": offered, "arguments": json.dumps(args)}])


# --- the summary agent --------------------------------------------------------------------------


def summary_answer(text: str) -> dict[str, Any]:
    words = text.split()
    parts = sentences(text) or ["No text was given."]
    points = parts[:3]
    if len(points) == 1:
        points = [c.strip() for c in re.split(r"[,;:]\s+", points[0]) if c.strip()][:3] or points
    return {
        "title": clip(" ".join(words[:6]).rstrip(".,;:!?") or "Untitled", 200),
        "summary": clip(" ".join(parts[:2]), 400),
        "key_points": [clip(p, 200) for p in points],
    }


# --- any other schema ---------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/") and seen < 20:
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema, seen = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, seen + 1
    return schema


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _resolve(part, root)
        merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
        merged["required"] = sorted(set(merged.get("required", [])) | set(part.get("required", [])))
        merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
    return merged


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "demo@example.com",
    "uri": "https://example.com/demo",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _fill_string(schema: dict[str, Any], name: str) -> str:
    value = _FORMATS.get(str(schema.get("format")), f"demo {name}".strip())
    value = value.ljust(int(schema.get("minLength", 0)), "x")
    return value[: int(schema["maxLength"])] if "maxLength" in schema else value


def _fill_number(schema: dict[str, Any], integer: bool) -> int | float:
    step = 1 if integer else 0.5
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, int | float) and not isinstance(ex_low, bool):
        low = ex_low + step if low is None else max(low, ex_low + step)
    if isinstance(ex_high, int | float) and not isinstance(ex_high, bool):
        high = ex_high - step if high is None else min(high, ex_high - step)
    value: float = 1
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high if low is None else (low + high) / 2
    multiple = schema.get("multipleOf")
    if multiple:
        value = math.ceil(value / multiple) * multiple
    return math.ceil(value) if integer else value


def fill_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "", depth: int = 0
) -> Any:
    """A JSON value satisfying ``schema`` (types, required fields, bounds, enums, $ref)."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [_resolve(o, root) for o in schema[key]]
            choice = next((o for o in options if o.get("type") != "null"), options[0])
            siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return fill_schema({**siblings, **choice}, root, name, depth)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = _schema_type(schema)
    if kind == "object":
        required = set(schema.get("required", []))
        props = schema.get("properties", {})
        keys = [k for k in props if depth < 8 or k in required]
        return {k: fill_schema(props[k], root, k, depth + 1) for k in keys}
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), 0 if depth >= 8 else 1)
        count = min(count, int(schema.get("maxItems", count)))
        raw_items = schema.get("items")
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        return [fill_schema(items, root, f"{name} {i + 1}".strip(), depth + 1) for i in range(count)]
    if kind in ("number", "integer"):
        return _fill_number(schema, kind == "integer")
    if kind == "boolean":
        return True
    return None if kind == "null" else _fill_string(schema, name)


# --- choosing the behaviour ---------------------------------------------------------------------


def _is_refund(tools: list[str], schema: dict[str, Any] | None) -> bool:
    if any(canonical(t) in (LOOKUP, REFUND) for t in tools):
        return True
    props = (schema or {}).get("properties", {})
    return {"order_id", "action", "customer_message"} <= set(props)


def default_reply(body: dict[str, Any]) -> Reply:
    """The deterministic answer to a chat-completions request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    schema, tools = output_schema(body), offered_tools(body)
    skill = registry().get(str((schema or {}).get("title", "")))
    if skill is not None:
        reply = skill(body)
        if reply is not None:
            return reply  # type: ignore[no-any-return]  # a skill is a plain callable; its reply is a dict
    if _is_refund(tools, schema):
        return refund_reply(messages, tools)
    if schema is not None and {"title", "summary", "key_points"} <= set(schema.get("properties", {})):
        return Reply(content=json.dumps(summary_answer(user_text(messages))))
    if schema is not None:
        return Reply(content=json.dumps(fill_schema(schema)))
    first = (sentences(user_text(messages)) or ["(no text)"])[0]
    return Reply(content=f"Frontdesk demo model (deterministic, not an LLM) received: {clip(first, 200)}")


def usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Token counts from character counts (4 characters a token), the same for the same request."""
    prompt_chars = len(json.dumps(body.get("messages") or [], sort_keys=True, default=str))
    if body.get("tools"):
        prompt_chars += len(json.dumps(body["tools"], sort_keys=True, default=str))
    out = reply.content or ""
    if reply.tool_calls:
        out += json.dumps([[c["name"], c["arguments"]] for c in reply.tool_calls])
    prompt, completion = max(1, math.ceil(prompt_chars / 4)), max(1, math.ceil(len(out) / 4))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
