"""The approve-with-edits form: fields from a tool's argument model, parsing back, budget raises."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from orchestrator.web import argform
from orchestrator.web.inbox import _budget_raise_edit


class Args(BaseModel):
    order_id: str = Field(pattern=r"^ORD-\d{4}$")
    amount: Decimal = Field(gt=0, description="Refund amount")
    currency: str = Field("EUR", json_schema_extra={"enum": ["EUR", "USD"]})
    notes: dict[str, str] = Field(default_factory=dict)
    urgent: bool = False


def test_fields_follow_the_schema() -> None:
    fields = {f.name: f for f in argform.fields(Args.model_json_schema(), {"order_id": "ORD-1234", "amount": 5})}
    assert fields["order_id"].kind == "text" and fields["order_id"].required
    assert "format" in fields["order_id"].constraints
    assert fields["amount"].kind == "number" and fields["amount"].value == "5"
    assert fields["currency"].kind == "select" and fields["currency"].options == ["EUR", "USD"]
    assert fields["notes"].kind == "json" and fields["urgent"].kind == "checkbox"


def test_parse_validates_with_the_model_and_keeps_input() -> None:
    schema = Args.model_json_schema()
    form = {"arg.order_id": "nope", "arg.amount": "12.5", "arg.currency": "EUR", "arg.notes": "{"}
    edited, fields = argform.parse(Args, argform.fields(schema, {}), form)
    assert edited is None
    by = {f.name: f for f in fields}
    assert by["notes"].error.startswith("not valid JSON") and by["order_id"].value == "nope"
    form.update({"arg.order_id": "ORD-1234", "arg.notes": "[" * 5000})
    edited, fields = argform.parse(Args, argform.fields(schema, {}), form)
    assert edited is None and {f.name: f for f in fields}["notes"].error  # too deep or invalid, no crash
    form["arg.notes"] = '{"a": "b"}'
    edited, _ = argform.parse(Args, argform.fields(schema, {}), form)
    assert edited == {"order_id": "ORD-1234", "amount": "12.5", "currency": "EUR", "notes": {"a": "b"}, "urgent": False}
    assert argform.diff({"amount": "10"}, {"amount": "12.5"}) == {"amount": {"from": "10", "to": "12.5"}}


def test_budget_raise_edit_needs_an_amount_above_the_limit() -> None:
    current = {"scope": "task", "limit_usd": "0.5", "counter_id": 3, "new_limit_usd": "1.0"}

    def run(value: str) -> tuple[object, str]:
        fields = argform.fields(argform.BUDGET_RAISE_SCHEMA, {"new_limit_usd": value})
        return _budget_raise_edit(current, {"new_limit_usd": value}, fields), fields[0].error

    assert run("2.00") == ({"new_limit_usd": "2"}, "")
    for bad in ("abc", "NaN", "0.4", "0.5"):
        result, error = run(bad)
        assert result is None and error, bad
