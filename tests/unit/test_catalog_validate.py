"""`validate_catalog`: every error and warning, with its message, on deliberately broken catalogs
(tests/catalog_fixtures/broken_pkg.py), and no errors on the real sample catalog."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from catalog_fixtures.bad_model_pkg import OpaqueAnswer
from catalog_fixtures.broken_pkg import Answer, Flaky
from catalog_fixtures.typed_pkg import Verdict
from repo_paths import SHIPPED_POLICIES

from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.catalog.validate import CatalogIssue, model_problems, policy_mentions, validate_catalog
from orchestrator.contracts import StepSpec
from orchestrator.policy.engine import PolicyEngine
from orchestrator.policy.rules import PolicyRule


@pytest.fixture(scope="module")
def broken() -> list[CatalogIssue]:
    return validate_catalog(load_catalog(["catalog_fixtures.broken_pkg"]))


def test_the_sample_catalog_has_no_errors() -> None:
    catalog = load_catalog(["orchestrator.demo.catalog"])
    issues = validate_catalog(catalog, PolicyEngine(SHIPPED_POLICIES))
    assert [str(i) for i in issues if i.severity == "error"] == []
    assert {"refund_request@1", "summary@1"} <= set(catalog.workflow_refs())


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_tier@1", "has an empty tier ladder: give a tier or tiers=[...]"),
        ("blank_rung@1", "tiers[1] is blank"),
        ("ghost_tools@1", "tools[1]: unknown tool 'nope@1'"),
        ("bad_judge@1", "validator.judge_agent: unknown agent 'missing_judge@1'; did you mean wrong_judge?"),
        ("judge_without_agent@1", "validator.judge_agent: a judge validator needs a judge agent"),
        (
            "wrong_judge@1",
            "validator.judge_agent: judge plain@1's output model has no boolean field 'approve' "
            "(a judge answers approve: bool and reason: str)",
        ),
        (
            "low_conf@1",
            "validator.field: output model catalog_fixtures.broken_pkg.Answer has no field 'certainty'",
        ),
        (
            "flaky@1",
            "output model catalog_fixtures.broken_pkg.Flaky does not round-trip through JSON: "
            "count: Input should be a valid integer, unable to parse string as an integer",
        ),
        ("bad_steps@1", "steps[0] (a).agent: an agent step names no agent"),
        ("bad_steps@1", "steps[1] (b).tool: a tool step names no tool (name@version)"),
        ("bad_steps@1", "steps[2] (c).planner_agents: a planner step needs the agents it may plan with"),
        (
            "bad_steps@1",
            "steps[2] (c).agent: planner plain@1's output model has no 'steps' (a planner answers a Plan)",
        ),
        ("bad_steps@1", "steps[3] (d).agent: unknown agent 'ghost@1'; did you mean ghost_tools?"),
        ("bad_steps@1", "steps[4] (e).tool: unknown tool 'ghost_tool@1'"),
        ("bad_steps@1", "steps[5] (f).planner_agents[0]: unknown agent 'ghost_planner@1'"),
        ("bad_steps@1", "steps[6].name: duplicate step name 'a' (also steps[0])"),
        (
            "bad_steps@1",
            "steps[7] (g).when: 'steps.later.ok' names no earlier step (want steps.<step>.<field> or "
            "input.<key>; earlier: a, b, c, d, e, f)",
        ),
        ("bad_steps@1", "steps[8] (h).args.q: {steps.later.answer} names no earlier step"),
        (
            "first_checkpoint@1",
            "steps[0] (review): a checkpoint reviews the previous step's output, but it is the first step",
        ),
        ("no_steps@1", "has no steps"),
    ],
)
def test_each_error_with_its_message(broken: list[CatalogIssue], ref: str, message: str) -> None:
    assert CatalogIssue("error", ref, message) in broken


def test_warnings_come_after_errors(broken: list[CatalogIssue]) -> None:
    warnings = [i for i in broken if i.severity == "warning"]
    assert [str(w) for w in warnings] == [
        "warning: bad_steps@1: steps[9] (later).agent: 'plain' has no version and means whatever is "
        "newest (now plain@1); write name@version",
        "warning: bad_steps@1: has 0 intake example(s); give at least 2 so intake can pick it from a request",
    ]
    assert broken[-2:] == warnings
    # the 20 above, no 'reason' for wrong_judge, plain@1 as the planner of step f too
    assert sum(1 for i in broken if i.severity == "error") == 22


def test_strict_turns_warnings_into_errors() -> None:
    strict = validate_catalog(load_catalog(["catalog_fixtures.broken_pkg"]), strict=True)
    assert {i.severity for i in strict} == {"error"} and len(strict) == 24


def test_output_models_that_do_not_serialize() -> None:
    [problem] = model_problems(OpaqueAnswer)
    assert problem.startswith(
        "output model catalog_fixtures.bad_model_pkg.OpaqueAnswer does not serialize to a JSON schema: "
        "PydanticInvalidForJsonSchema"
    )
    assert model_problems(Answer) == [] and model_problems(Verdict) == []
    assert "does not round-trip" in model_problems(Flaky)[0]


# --- policies ----------------------------------------------------------------------------------------------


def _rule(rule_id: str, agent: str, tool: str, effect: str = "allow") -> PolicyRule:
    return PolicyRule(rule_id, "all-tenants", agent, tool, "True", effect)


def _policy(*rules: PolicyRule) -> Any:
    return SimpleNamespace(view=lambda: SimpleNamespace(rules=rules))


def _catalog() -> Catalog:
    """Tools fx_echo and fx_save_note; fx_helper may ask for both; a workflow step calls fx_save_note."""
    catalog = load_catalog(["catalog_fixtures.typed_pkg"])
    step = StepSpec(name="note", kind="tool", tool="fx_save_note@2", args={"note": "{input.text}"})
    catalog.add_workflow(
        WorkflowDefinition(name="notes", version="1", description="d", steps=[step], examples=["a", "b"])
    )
    return catalog


def _policy_warnings(*rules: PolicyRule) -> list[str]:
    return [str(i) for i in validate_catalog(_catalog(), _policy(*rules))]


def test_tools_no_rule_mentions() -> None:
    assert _policy_warnings() == [
        "warning: fx_echo@1: no policy rule mentions tool 'fx_echo': every call to it is denied "
        "(add a rule to tool_policy.csv)",
        "warning: fx_save_note@2: no policy rule mentions tool 'fx_save_note': every call to it is denied "
        "(add a rule to tool_policy.csv)",
    ]
    # a bare `*` mentions nothing in particular, a guard never grants
    assert len(_policy_warnings(_rule("guard", "*", "*", "approve"), _rule("all", "fx_helper", "*"))) == 2


def test_rules_mention_tools_by_name_glob_and_alternatives() -> None:
    rules = [
        _rule("a", "fx_helper", "fx_*"),
        _rule("b", "x|fx_helper", "other|fx_save_note"),
        _rule("c", "*", "*"),
    ]
    assert policy_mentions(rules, "fx_echo@1") == ["a"]
    assert policy_mentions(rules, "fx_save_note") == ["a", "b"]
    assert policy_mentions(rules, "lookup_order") == []
    workflow_rule = _rule("wf", "workflow:*", "fx_save_note")  # fx_flow and notes call it in a step
    assert _policy_warnings(rules[0], workflow_rule) == []


def test_agents_and_workflow_steps_no_rule_lets_call_a_tool() -> None:
    only_others = (
        _rule("o", "someone_else", "fx_echo|fx_save_note"),
        _rule("d", "fx_helper", "fx_*", "deny"),
    )
    assert _policy_warnings(*only_others) == [
        "warning: fx_helper@1: tools[0]: no policy rule lets agent 'fx_helper' call 'fx_echo'; every call is denied",
        "warning: fx_helper@1: tools[1]: no policy rule lets agent 'fx_helper' call 'fx_save_note'; "
        "every call is denied",
        "warning: fx_flow@1: steps[1] (save).tool: no policy rule lets 'workflow:fx_flow' call 'fx_save_note'; "
        "the step will be denied",
        "warning: notes@1: steps[0] (note).tool: no policy rule lets 'workflow:notes' call 'fx_save_note'; "
        "the step will be denied",
    ]
    assert _policy_warnings(_rule("h", "fx_helper|workflow:*", "fx_echo|fx_save_note", "approve")) == []


def test_workflows_without_intake_examples() -> None:
    catalog = Catalog()
    catalog.add_workflow(
        WorkflowDefinition(name="w", version="1", description="d", steps=[], examples=["one"])
    )
    assert CatalogIssue(
        "warning", "w@1", "has 1 intake example(s); give at least 2 so intake can pick it from a request"
    ) in validate_catalog(catalog)
