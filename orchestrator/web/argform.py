"""The "approve with edits" form, generated from a tool's argument model.

`fields(schema, values)` turns the model's JSON schema into form fields (text, long text,
number, choice, yes/no, or JSON for anything nested); `parse(model, fields, form)` reads a
submitted form back and validates it with the same pydantic model the tool itself uses, so a
person sees exactly the errors the workflow would give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

PREFIX = "arg."
BUDGET_RAISE_SCHEMA: dict[str, Any] = {
    "properties": {
        "new_limit_usd": {"type": "number", "title": "New limit (USD)", "description": "above the current limit"}
    },
    "required": ["new_limit_usd"],
}


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # text | textarea | number | integer | select | checkbox | json
    required: bool
    value: str
    description: str = ""
    options: list[str] = field(default_factory=list)
    constraints: str = ""
    error: str = ""

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def input_id(self) -> str:
        return "arg-" + self.name.replace("_", "-")


def _kind(prop: dict[str, Any]) -> tuple[str, list[str]]:
    if "enum" in prop:
        return "select", [str(v) for v in prop["enum"]]
    types = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", [])}
    types.discard(None)
    if types & {"object", "array"}:
        return "json", []
    if "number" in types:
        return "number", []
    if "integer" in types:
        return "integer", []
    if types == {"boolean"}:
        return "checkbox", []
    if prop.get("maxLength", 0) > 300 or prop.get("format") == "textarea":
        return "textarea", []
    return "text", []


def _constraints(prop: dict[str, Any]) -> str:
    parts = []
    for p in [prop, *prop.get("anyOf", [])]:
        for key, text in (("minimum", "at least"), ("exclusiveMinimum", "more than"), ("maximum", "at most"),
                          ("maxLength", "up to {} characters"), ("pattern", "format {}")):
            if key in p:
                parts.append(text.format(p[key]) if "{}" in text else f"{text} {p[key]}")
    return ", ".join(dict.fromkeys(parts))


def _text(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, indent=2, sort_keys=True)
    if kind == "checkbox":
        return "true" if value else ""
    return str(value)


def fields(schema: dict[str, Any], values: dict[str, Any]) -> list[FormField]:
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        kind, options = _kind(prop)
        out.append(
            FormField(
                name=name,
                label=prop.get("title") or name.replace("_", " ").capitalize(),
                kind=kind,
                required=name in required,
                value=_text(values.get(name, prop.get("default")), kind),
                description=prop.get("description", ""),
                options=options,
                constraints=_constraints(prop),
            )
        )
    return out


def parse(
    model: type[BaseModel] | None, form_fields: list[FormField], form: dict[str, str]
) -> tuple[dict[str, Any] | None, list[FormField]]:
    """The edited arguments (as JSON values), or None with the fields carrying their errors."""
    raw: dict[str, Any] = {}
    for f in form_fields:
        text = form.get(f.input_name, "")
        f.value = text if f.kind != "checkbox" else ("true" if text else "")
        f.error = ""
        if f.kind == "checkbox":
            raw[f.name] = bool(text)
        elif text.strip() == "" and not f.required:
            continue
        elif f.kind == "json":
            try:
                raw[f.name] = json.loads(text)
            except json.JSONDecodeError as exc:
                f.error = f"not valid JSON ({exc.msg} at line {exc.lineno})"
            except RecursionError:
                f.error = "nested too deeply"
        elif f.kind == "integer":
            try:
                raw[f.name] = int(text.strip())
            except ValueError:
                f.error = "must be a whole number"
        else:
            raw[f.name] = text.strip() if f.kind == "number" else text
    if any(f.error for f in form_fields):
        return None, form_fields
    if model is None:
        return raw, form_fields
    try:
        validated = model.model_validate(raw)
    except ValidationError as exc:
        by_name = {f.name: f for f in form_fields}
        for e in exc.errors():
            target = by_name.get(str(e["loc"][0])) if e["loc"] else None
            if target is not None:
                target.error = e["msg"]
            elif form_fields:
                form_fields[0].error = e["msg"]
        return None, form_fields
    return validated.model_dump(mode="json"), form_fields


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What changed, in the shape the workflow records (`{field: {"from", "to"}}`)."""
    return {
        key: {"from": before.get(key), "to": after.get(key)}
        for key in sorted(set(before) | set(after))
        if str(before.get(key)) != str(after.get(key))
    }
