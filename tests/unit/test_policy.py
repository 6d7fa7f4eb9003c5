"""The policy engine: deny by default, first matching rule, guards, approvals, versions, hot
reload, and the linter behind `frontdesk policy check`."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from repo_paths import SHIPPED_POLICIES

from orchestrator.policy.engine import PolicyEngine, PolicyError, ToolFacts
from orchestrator.policy.lint import lint

# The facts of a refund task as the worker passes them (internal data, an irreversible tool).
INTERNAL = ToolFacts(side_effect="irreversible", data_classification="internal", tenant_domain="acme.example")
READ = ToolFacts(side_effect="read", data_classification="internal", tenant_domain="acme.example")


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICIES, target)
    return target


@pytest.mark.parametrize(
    "amount, effect",
    [("0.01", "allow"), ("99.99", "allow"), ("100", "approve"), ("1000", "approve"), ("1000.01", "deny")],
)
def test_refund_thresholds(policies: Path, amount: str, effect: str) -> None:
    engine = PolicyEngine(policies)
    d = engine.decide_tool(
        tenant_id="acme",
        agent="refund_agent",
        tool="issue_refund",
        args={"amount": Decimal(amount)},
        facts=INTERNAL,
    )
    assert d.effect == effect
    assert d.rule.endswith(effect) and d.policy_version == engine.version


def test_deny_by_default(policies: Path) -> None:
    engine = PolicyEngine(policies)
    d = engine.decide_tool(
        tenant_id="acme", agent="summary_agent", tool="issue_refund", args={"amount": Decimal(1)}
    )
    assert d.effect == "deny" and d.rule == "" and "deny by default" in d.reason
    d = engine.decide_tool(tenant_id="acme", agent="refund_agent", tool="issue_refund", args={})
    assert d.effect == "deny" and "could not be evaluated" in d.reason


def test_people_rbac_per_tenant(policies: Path) -> None:
    engine = PolicyEngine(policies)
    assert engine.allowed(["requester"], "acme", "task", "submit")
    assert not engine.allowed(["requester"], "acme", "checkpoint", "decide")
    assert engine.allowed(["approver"], "globex", "checkpoint", "decide")
    assert not engine.allowed([], "acme", "task", "read_own")
    assert not engine.allowed(["superuser"], "acme", "task", "submit")


def test_policy_change_reloads_with_a_new_version(policies: Path) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    csv = policies / "tool_policy.csv"
    csv.write_text(
        csv.read_text().replace("money(r.args.amount) < 100, allow", "money(r.args.amount) < 100, approve")
    )
    time.sleep(0.01)
    d = engine.decide_tool(
        tenant_id="acme",
        agent="refund_agent",
        tool="issue_refund",
        args={"amount": Decimal(5)},
        facts=INTERNAL,
    )
    assert d.effect == "approve" and engine.version != before


def test_broken_policy_file_keeps_last_good_version(policies: Path) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    (policies / "tool_model.conf").write_text("[request_definition]\nthis is not casbin\n")
    d = engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="lookup_order", args={"order_id": "ORD-1"}, facts=READ
    )
    assert d.effect == "allow" and d.policy_version == before


# --- facts, guards and approvals ------------------------------------------------------------------

CONFIDENTIAL = INTERNAL.model_copy(update={"data_classification": "confidential"})


def refund(
    engine: PolicyEngine, amount: str, facts: ToolFacts | None = INTERNAL, agent: str = "refund_agent"
):
    return engine.decide_tool(
        tenant_id="acme", agent=agent, tool="issue_refund", args={"amount": Decimal(amount)}, facts=facts
    )


def test_decisions_name_the_rule_and_its_approval_settings(policies: Path) -> None:
    engine = PolicyEngine(policies)
    small, band, large, over = (refund(engine, a) for a in ("99.99", "100", "500", "1000.01"))
    assert (small.rule_id, small.approval) == ("refund-small", None)
    assert band.rule_id == "refund-needs-approval" and band.approval is not None
    assert band.approval.approvers_required == 1 and band.approval.assignee_role == "approver"
    assert [(e.after_seconds, e.add_roles, e.action) for e in band.approval.sla] == [
        (4 * 3600, ("admin",), "escalate"),
        (24 * 3600, (), "auto_reject"),
    ]
    assert large.rule_id == "refund-large-two-approvers" and large.approval is not None
    assert large.approval.approvers_required == 2 and large.approval.sla == band.approval.sla
    assert (over.effect, over.rule_id, over.approval) == ("deny", "refund-over-limit", None)
    assert engine.approval_for("refund-large-two-approvers") == large.approval
    assert engine.approval_for("email-outside-domain") == engine.view().default_approval
    assert engine.approval_for("refund-small") is None and engine.approval_for("nope") is None


def test_missing_facts_take_their_strictest_values(policies: Path) -> None:
    engine = PolicyEngine(policies)
    assert ToolFacts() == ToolFacts(
        side_effect="irreversible", data_classification="confidential", risk_class="high", tenant_domain=""
    )
    assert ToolFacts(data_classification="secret", side_effect=None).data_classification == "confidential"
    assert ToolFacts(tenant_domain="not a domain").tenant_domain == ""
    d = refund(engine, "5", facts=None)
    assert (d.effect, d.rule_id) == ("approve", "confidential-irreversible")
    d = engine.decide_tool(
        tenant_id="acme", agent="support_agent", tool="send_email", args={"to": "a@acme.example"}
    )
    assert (d.effect, d.rule_id) == ("approve", "email-outside-domain")  # unknown domain: outside


def test_guard_raises_an_allow_but_never_lifts_a_deny_or_weakens_an_approval(policies: Path) -> None:
    engine = PolicyEngine(policies)
    d = refund(engine, "5", CONFIDENTIAL)
    assert (d.effect, d.rule_id) == ("approve", "confidential-irreversible")
    assert "refund-small alone would allow" in d.reason and d.approval is not None
    assert (refund(engine, "5000", CONFIDENTIAL).effect, refund(engine, "5000", CONFIDENTIAL).rule_id) == (
        "deny",
        "refund-over-limit",
    )
    d = refund(engine, "600", CONFIDENTIAL)
    assert d.rule_id == "refund-large-two-approvers" and d.approval and d.approval.approvers_required == 2
    d = refund(engine, "5", CONFIDENTIAL, agent="summary_agent")
    assert d.effect == "deny" and "deny by default" in d.reason
    read = CONFIDENTIAL.model_copy(update={"side_effect": "read"})
    d = engine.decide_tool(tenant_id="acme", agent="support_agent", tool="lookup_order", args={}, facts=read)
    assert (d.effect, d.rule_id) == ("allow", "order-lookup")


def test_explain_lists_every_rule_with_whether_it_matched(policies: Path) -> None:
    engine = PolicyEngine(policies)
    result = engine.explain(
        tenant_id="acme", agent="refund_agent", tool="issue_refund", args={"amount": "250"}, facts=INTERNAL
    )
    assert result.decision.rule_id == "refund-needs-approval" and result.facts == INTERNAL
    matched = {c.rule.rule_id: c.matched for c in result.checks}
    assert [c.rule.rule_id for c in result.checks] == [r.rule_id for r in engine.view().rules]
    assert matched == {rule_id: rule_id == "refund-needs-approval" for rule_id in matched}
    assert {"confidential-irreversible", "refund-over-limit", "refund-small", "order-lookup"} <= set(matched)
    bad = engine.explain(tenant_id="acme", agent="refund_agent", tool="issue_refund", args={"amount": "x"})
    assert bad.decision.effect == "deny" and bad.checks[1].error == "'x' is not an amount"


@pytest.mark.parametrize("tenant", ["", "all-tenants"])
def test_no_decision_without_a_real_tenant(policies: Path, tenant: str) -> None:
    engine = PolicyEngine(policies)
    d = engine.decide_tool(tenant_id=tenant, agent="refund_agent", tool="lookup_order", args={}, facts=READ)
    assert d.effect == "deny"
    assert not engine.allowed(["admin"], tenant, "policy", "read")


# --- versions and hot reload ------------------------------------------------------------------------


def poll(
    engine: PolicyEngine, probe: Callable[[PolicyEngine], object], want: object, limit: float = 1.0
) -> float:
    """Seconds until `probe(engine)` returns `want`; fails after `limit` seconds."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) <= limit:
        if probe(engine) == want:
            return elapsed
        time.sleep(0.01)
    raise AssertionError(f"no {want!r} within {limit} s")


def test_a_change_applies_to_the_next_decision_within_one_second(policies: Path) -> None:
    engine = PolicyEngine(policies)  # the default interval (0.5 s)
    before = engine.version
    csv = policies / "tool_policy.csv"
    csv.write_text(csv.read_text().replace("> 1000, deny", "> 10, deny"))
    poll(engine, lambda e: refund(e, "50").effect, "deny")
    assert engine.version != before and refund(engine, "50").rule_id == "refund-over-limit"


def test_approvals_are_part_of_the_version_and_reload(policies: Path) -> None:
    engine = PolicyEngine(policies)
    before = engine.version
    yaml_file = policies / "approvals.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("approvers_required: 2", "approvers_required: 3"))
    poll(engine, lambda e: refund(e, "600").approval.approvers_required, 3)
    assert engine.version != before


def test_broken_approvals_keep_the_last_good_version_and_log_once(
    policies: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    yaml_file = policies / "approvals.yaml"
    yaml_file.write_text(yaml_file.read_text() + "\nrefund-smal:\n  approvers_required: 0\n")
    for _ in range(3):
        assert refund(engine, "600").approval.approvers_required == 2
    assert engine.version == before
    failures = [r for r in caplog.records if "policy reload failed" in r.getMessage()]
    assert len(failures) == 1 and "refund-smal" in failures[0].getMessage()
    with pytest.raises(PolicyError) as err:
        PolicyEngine(policies)
    assert any("rule refund-smal: no rule with this id" in p for p in err.value.problems)


def test_a_file_removed_keeps_the_last_good_version(policies: Path) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    (policies / "approvals.yaml").unlink()
    assert refund(engine, "150").effect == "approve" and engine.version == before


def test_a_permission_revoked_under_load_is_denied_within_one_second(policies: Path) -> None:
    """8 threads keep deciding while support_agent loses lookup_order (the file is replaced
    atomically, as a deploy would): every thread sees the revocation within 1 s and never flips
    back, and refund_agent, whose permission did not change, is never denied. Each thread pauses
    1 ms per round, as a request handler waiting on I/O does (threads spinning on pure Python
    would starve the reloading thread's file reads of the GIL, which no API worker does)."""
    engine = PolicyEngine(policies)
    csv = policies / "tool_policy.csv"
    stop = threading.Event()
    problems: list[str] = []
    revoked_at: dict[int, float] = {}

    def decide(agent: str) -> str:
        return engine.decide_tool(
            tenant_id="acme", agent=agent, tool="lookup_order", args={}, facts=READ
        ).effect

    def worker(n: int) -> None:
        while not stop.is_set():
            if decide("refund_agent") != "allow":
                problems.append("refund_agent was denied")
            effect = decide("support_agent")
            if effect == "deny":
                revoked_at.setdefault(n, time.monotonic())
            elif n in revoked_at:
                problems.append(f"thread {n} saw {effect} after the revocation")
            time.sleep(0.001)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.1)
        new = csv.with_suffix(".new")
        new.write_text(
            csv.read_text().replace("refund_agent|support_agent, lookup_order", "refund_agent, lookup_order")
        )
        changed = time.monotonic()
        os.replace(new, csv)
        while len(revoked_at) < len(threads) and time.monotonic() - changed <= 1.0:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
    assert len(revoked_at) == len(threads) and max(revoked_at.values()) - changed <= 1.0


# --- the linter -------------------------------------------------------------------------------------


def test_the_shipped_policies_lint_clean() -> None:
    assert [str(i) for i in lint(SHIPPED_POLICIES)] == []


def lint_with(policies: Path, *tool_lines: str, approvals: str = "") -> list[str]:
    with (policies / "tool_policy.csv").open("a") as f:
        f.write("".join(f"{line}\n" for line in tool_lines))
    if approvals:
        with (policies / "approvals.yaml").open("a") as f:
            f.write(approvals)
    return [str(i) for i in lint(policies) if i.severity == "error"]


REFUSED = [
    ("p, all-tenants, *, *, True, allow, open-all", "over-matching"),
    ("p, all-tenants, summary_agent, *, 1 == 1, allow, any-tool", "over-matching"),
    ("p, acme, *, lookup_order, True, allow, any-agent", "over-matching"),
    ("p, all-tenants, *_agent, lookup_order, r.facts.risk_class == 'low', allow, mid-star", "may only end"),
    ("p, all-tenants, summary_agent, lookup_order, True, permit, odd", "unknown effect 'permit'"),
    ("p, all-tenants, summary_agent, lookup_order, True, allow", "the rule id is missing"),
    ("p, all-tenants, summary_agent, lookup_order, True, allow, ", "the rule id is missing"),
    ("p, all-tenants, summary_agent, lookup_order, True, allow, order-lookup", "already used on line"),
    ("p, all-tenants, summary_agent, lookup_order, r.args.x >> >, deny, bad", "does not parse"),
    ("p, all-tenants, summary_agent, lookup_order, nope(r.args.x), deny, fn", "unknown function 'nope'"),
    ("p, all-tenants, summary_agent, lookup_order, r.facts.colour == 1, deny, fact", "unknown fact"),
    ("p, *, summary_agent, lookup_order, r.args.x == 1, deny, tenant-star", "no patterns"),
    ("p, all-tenants, support_agent, lookup_order, r.args.x == 1, deny, late", "can never be reached"),
    ("g, all-tenants, a, b", "only `p` rules"),
]


@pytest.mark.parametrize("line, message", REFUSED, ids=[m for _, m in REFUSED])
def test_lint_refuses(policies: Path, line: str, message: str) -> None:
    errors = lint_with(policies, line)
    assert any(message in e for e in errors), errors
    with pytest.raises(PolicyError):
        PolicyEngine(policies)  # the engine refuses what the linter refuses


def test_lint_refuses_a_rule_shadowed_by_an_identical_one(policies: Path) -> None:
    rule = "all-tenants, summary_agent, lookup_order, r.facts.risk_class == 'low'"
    first = (
        len((policies / "tool_policy.csv").read_text().splitlines()) + 1
    )  # appended after the shipped rules
    errors = lint_with(policies, f"p, {rule}, allow, first", f"p, {rule}, deny, second")
    assert errors == [
        f"error: tool_policy.csv:{first + 1}: rule second can never be reached: rule first (line {first}) "
        "covers it and always matches first"
    ]


def test_guards_and_conditional_wildcards_are_accepted(policies: Path) -> None:
    assert (
        lint_with(
            policies,
            "p, all-tenants, *, send_email, r.facts.data_classification == 'confidential', deny, no-mail",
            "p, all-tenants, *, lookup_order, r.facts.data_classification == 'public', allow, public-lookup",
            "p, acme, refund_*, *, r.facts.risk_class == 'high', approve, acme-high-risk",
        )
        == []
    )


@pytest.mark.parametrize(
    "entry, message",
    [
        ("refund-small:\n  approvers_required: 0\n", "rule refund-small: approvers_required must be"),
        ("ghost-rule:\n  approvers_required: 1\n", "rule ghost-rule: no rule with this id"),
        ("email-outside-domain:\n  colour: red\n", "unknown setting(s) colour"),
        ("email-outside-domain:\n  sla: [{after: 1h, action: explode}]\n", "action must be escalate"),
        (
            "email-outside-domain:\n  sla: [{after: 1h, action: auto_reject}, "
            "{after: 2h, add_roles: [admin]}]\n",
            "nothing can follow auto_reject",
        ),
        (
            "email-outside-domain:\n  sla: [{after: 2h, add_roles: [admin]}, "
            "{after: 1h, action: auto_reject}]\n",
            "increasing time",
        ),
        ("email-outside-domain:\n  sla: [{after: soon, add_roles: [admin]}]\n", "is not a duration"),
        ("refund-needs-approval:\n  approvers_required: 3\n", "given twice"),
    ],
)
def test_approvals_are_validated_with_the_rule_named(policies: Path, entry: str, message: str) -> None:
    errors = lint_with(policies, approvals="\n" + entry)
    assert any(message in e for e in errors), errors


def test_approvals_need_a_default(policies: Path) -> None:
    text = (policies / "approvals.yaml").read_text()
    (policies / "approvals.yaml").write_text(text.replace("default:", "fallback:"))
    assert any("needs a `default` entry" in e for e in lint_with(policies))


def test_settings_for_a_rule_that_does_not_approve_are_a_warning(policies: Path) -> None:
    with (policies / "approvals.yaml").open("a") as f:
        f.write("\nrefund-small:\n  approvers_required: 2\n")
    issues = [str(i) for i in lint(policies)]
    assert issues == [
        "warning: approvals.yaml:29: rule refund-small does not approve: its settings are unused"
    ]
    assert PolicyEngine(policies).approval_for("refund-small") is None


def test_casbin_logs_neither_the_policy_nor_each_request(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Decisions are recorded by Frontdesk (audited); casbin's own INFO/WARNING lines would copy
    the policy and every request's arguments into the process log."""
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICIES, target)
    with caplog.at_level("INFO"):
        engine = PolicyEngine(target)
        engine.allowed(["requester"], "acme", "task", "submit")
        engine.allowed(["requester"], "acme", "checkpoint", "decide")  # a denial: casbin warns on these
    assert not [r for r in caplog.records if r.name.startswith("casbin")]
