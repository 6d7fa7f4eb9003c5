"""Budgets without a database: the worst-case estimate, the rules file, breach messages, money."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import yaml
from repo_paths import SHIPPED_POLICIES

from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.rules import (
    BudgetBreach,
    BudgetError,
    BudgetRules,
    BudgetRulesError,
    check_month,
    estimate_worst_case,
    subject_name,
    to_usd,
    usd,
)

POLICIES = SHIPPED_POLICIES
PRICES = PriceTable.load(POLICIES / "prices.yaml")
VALID: dict[str, Any] = {
    "version": 1,
    "task": {"default_limit_usd": 0.5, "max_limit_usd": 5, "on_breach": "pause"},
    "step": {"on_breach": "pause"},
    "tenant_month": {"limit_usd": "100.00", "on_breach": "stop"},
    "agent_month": {"on_breach": "stop", "limits": {"refund_agent": 20}},
    "tool_month": {"on_breach": "stop", "limits": None},
}


# --- estimate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "chars", "max_tokens", "expected"),
    [
        # ceil(10 / 4) = 3 input tokens at 1e-7 + 100 output tokens at 4e-7
        ("tier-slm", 10, 100, D("0.0000403")),
        ("tier-slm", 8, 0, D("0.0000002")),  # exactly 2 tokens
        ("tier-slm", 9, 0, D("0.0000003")),  # 2.25 -> 3 tokens: never understate
        ("tier-frontier", 400, 140, D("0.004")),  # 100 x 5e-6 + 140 x 25e-6
        ("tier-open", 0, 1024, D("0.0024576")),
        ("some-unknown-alias", 4, 1, D("0.00003")),  # priced at the default (the dearest tier)
    ],
)
def test_estimate_worst_case(tier: str, chars: int, max_tokens: int, expected: D) -> None:
    assert estimate_worst_case(PRICES, tier, chars, max_tokens) == expected


def test_estimate_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="negative"):
        estimate_worst_case(PRICES, "tier-slm", -1, 10)


# --- the rules file --------------------------------------------------------------------------------


def test_shipped_rules_file_loads() -> None:
    rules = BudgetRules.load(POLICIES / "budgets.yaml")
    assert rules.task.default_limit_usd == D("0.50")
    assert rules.task.max_limit_usd == D("5.00")
    assert rules.task.on_breach == "pause"
    assert rules.step.on_breach == "pause"
    assert rules.tenant_month.limit_usd == D("100")
    assert rules.tenant_month.on_breach == "stop"
    assert rules.agent_month.on_breach == rules.tool_month.on_breach == "stop"
    assert rules.default("task_max") == (D("5.00"), "stop")


def test_rules_keep_yaml_floats_exact_and_default_per_scope() -> None:
    rules = BudgetRules.from_dict(
        yaml.safe_load(yaml.safe_dump({**VALID, "task": {**VALID["task"], "default_limit_usd": 0.1}}))
    )
    assert rules.task.default_limit_usd == D("0.1")  # not 0.1000000000000000055…
    assert rules.default("agent_month", "refund_agent") == (D("20"), "stop")
    assert rules.default("agent_month", "other_agent") == (None, "stop")
    assert rules.default("tool_month", "send_email") == (None, "stop")
    with pytest.raises(BudgetError, match="scope must be one of"):
        rules.default("galaxy")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"task": {"default_limit_usd": -1, "max_limit_usd": 5}},
            "task.default_limit_usd: Input should be greater",
        ),
        (
            {"task": {"default_limit_usd": 1, "max_limit_usd": 5, "on_breach": "halt"}},
            "task.on_breach: Input should be 'pause' or 'stop'",
        ),
        (
            {"task": {"default_limit_usd": 9, "max_limit_usd": 5}},
            "default_limit_usd must not be above max_limit_usd",
        ),
        ({"task": {"default_limit_usd": "lots", "max_limit_usd": 5}}, "task.default_limit_usd"),
        ({"task": {"default_limit_usd": True, "max_limit_usd": 5}}, "not true/false"),
        ({"task": {"max_limit_usd": 5}}, "task.default_limit_usd: Field required"),
        ({"tenant_month": {"limt_usd": 100}}, "tenant_month.limt_usd: Extra inputs are not permitted"),
        ({"agent_month": {"limits": {"refund_agent@1": 5}}}, "is not an agent or tool name"),
        ({"tool_month": {"limits": {"send_email": "nan"}}}, "tool_month.limits.send_email"),
        ({"version": 2}, "version: Input should be 1"),
        ({"steps": {}}, "steps: Extra inputs are not permitted"),
    ],
)
def test_invalid_rules_say_where_and_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BudgetRulesError) as err:
        BudgetRules.from_dict({**VALID, **change}, "budgets.yaml")
    assert str(err.value).startswith("budgets.yaml is invalid: ")
    assert message in str(err.value)


def test_rules_file_errors(tmp_path: Path) -> None:
    with pytest.raises(BudgetRulesError, match="cannot read"):
        BudgetRules.load(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed")
    with pytest.raises(BudgetRulesError, match="not valid YAML"):
        BudgetRules.load(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(BudgetRulesError, match="must be a YAML mapping"):
        BudgetRules.load(tmp_path / "list.yaml")


# --- breaches --------------------------------------------------------------------------------------


def breach(**kw: Any) -> BudgetBreach:
    values: dict[str, Any] = {
        "scope": "task",
        "period": "tsk_1",
        "limit_usd": D("0.05"),
        "spent_usd": D("0.048"),
        "reserved_usd": D("0.003"),
        "requested_usd": D("0.010"),
        "on_breach": "pause",
        "counter_id": 7,
    }
    return BudgetBreach(**{**values, **kw})


def test_task_breach_message_names_the_budget_its_limit_and_spend() -> None:
    assert breach().message == (
        "task budget exceeded (task tsk_1): limit $0.05, spent $0.048, reserved $0.003, "
        "this call needs up to $0.01; the task waits for a budget raise"
    )


@pytest.mark.parametrize(
    ("kw", "start"),
    [
        ({"scope": "step", "period": "tsk_1/draft"}, "step budget exceeded (step 'draft' of task tsk_1)"),
        (
            {"scope": "tenant_month", "period": "2026-11"},
            "tenant_month budget exceeded (the tenant's month 2026-11)",
        ),
        (
            {"scope": "agent_month", "subject": "refund_agent", "period": "2026-11"},
            "agent_month budget exceeded (agent 'refund_agent', month 2026-11)",
        ),
        (
            {"scope": "tool_month", "subject": "send_email", "period": "2026-11"},
            "tool_month budget exceeded (tool 'send_email', month 2026-11)",
        ),
    ],
)
def test_every_scope_is_named(kw: dict[str, Any], start: str) -> None:
    message = breach(**kw).message
    assert message.startswith(start + ": limit $0.05, spent $0.048, reserved $0.003")


def test_breach_consequence_follows_the_rule_and_the_moment() -> None:
    assert breach(on_breach="stop").message.endswith("this call needs up to $0.01; the step stops")
    assert breach(during="settle").message.endswith(
        "this call cost $0.01; the next call on this budget is refused"
    )
    assert "this tool charged $0.01" in breach(during="charge").message


def test_breach_json_round_trips_with_money_as_strings() -> None:
    b = breach(limit_usd=D("100.000000000"))
    data = json.loads(b.model_dump_json())
    assert data["limit_usd"] == "100.00"
    assert data["spent_usd"] == "0.048"
    assert data["message"].startswith("task budget exceeded")
    again = BudgetBreach.model_validate(data)  # the computed message is ignored on the way in
    assert again == b


# --- money and names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [(D("0"), "$0.00"), (D("0E-9"), "$0.00"), (D("0.048000000"), "$0.048"), (D("100"), "$100.00"),
     (D("0.000000001"), "$0.000000001"), (D("12.5"), "$12.50"), (None, "unlimited")],
)  # fmt: skip
def test_usd(amount: D | None, text: str) -> None:
    assert usd(amount) == text


def test_to_usd_rounds_to_the_column_scale_and_refuses_nonsense() -> None:
    assert to_usd("0.1") == D("0.100000000")
    assert to_usd(0.1) == D("0.100000000")
    assert to_usd(D("0.0000000001"), rounding="ROUND_CEILING") == D("0.000000001")
    for bad in ("-1", "abc", "NaN", "Infinity", True, "1e12"):
        with pytest.raises(BudgetError):
            to_usd(bad)


def test_months_and_subjects() -> None:
    assert check_month("2026-11") == "2026-11"
    for bad in ("2026-13", "2026-1", "26-11", "2026-11-01", ""):
        with pytest.raises(BudgetError, match="month must look like 2026-11"):
            check_month(bad)
    assert subject_name("refund_agent@1") == "refund_agent"
    assert subject_name("send_email") == "send_email"


def test_months_outside_the_calendar_are_refused() -> None:
    from orchestrator.budgets.rules import BudgetError, check_month

    assert check_month("2026-11") == "2026-11"
    for bad in ("0000-01", "9999-12", "\uff12\uff10\uff12\uff16-11", "2026-13"):
        with pytest.raises(BudgetError):
            check_month(bad)
