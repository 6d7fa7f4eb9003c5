"""Property-based tests (hypothesis) of the conditions of the shipped tool policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from repo_paths import SHIPPED_POLICIES

from orchestrator.policy.engine import PolicyEngine, ToolDecision, ToolFacts

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
INTERNAL = ToolFacts(side_effect="irreversible", data_classification="internal", tenant_domain="acme.example")
WRITE = INTERNAL.model_copy(update={"side_effect": "write"})

amounts = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=4, allow_nan=False)
positive = amounts.filter(lambda a: a > 0)
facts = st.builds(
    ToolFacts,
    side_effect=st.sampled_from(["read", "write", "irreversible"]),
    data_classification=st.sampled_from(["public", "internal", "confidential"]),
    risk_class=st.sampled_from(["low", "medium", "high"]),
    category=st.sampled_from(["", "customer-service"]),
    tenant_domain=st.sampled_from(["acme.example", "globex.example", ""]),
)
label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
local_part = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", min_size=1, max_size=30
)
domains = st.lists(label, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "example"]))
not_amounts = st.one_of(
    st.none(),
    st.booleans(),
    st.text().filter(lambda s: not _parses(s)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), "NaN", "-Infinity", Decimal("NaN")]),
)


def _parses(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(SHIPPED_POLICIES, reload_interval=3600)


def refund(engine: PolicyEngine, amount: Any, facts: ToolFacts | None = INTERNAL) -> ToolDecision:
    return engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="issue_refund", args={"amount": amount}, facts=facts
    )


def email(
    engine: PolicyEngine, to: Any, facts: ToolFacts | None = WRITE, agent: str = "support_agent"
) -> ToolDecision:
    return engine.decide_tool(
        tenant_id="acme",
        agent=agent,
        tool="send_email",
        args={"to": to, "subject": "s", "body": "b"},
        facts=facts,
    )


def strictness(d: ToolDecision) -> float:
    """allow < approve (more approvers = stricter) < deny."""
    if d.effect == "approve":
        return 1 + (d.approval.approvers_required if d.approval else 0) / 10
    return {"allow": 0.0, "deny": 3.0}[d.effect]


@SETTINGS
@given(amount=amounts)
def test_refund_bands(engine: PolicyEngine, amount: Decimal) -> None:
    d = refund(engine, amount)
    if amount > 1000:
        assert (d.effect, d.rule_id) == ("deny", "refund-over-limit")
    elif amount >= 500:
        required = d.approval and d.approval.approvers_required
        assert (d.effect, d.rule_id, required) == ("approve", "refund-large-two-approvers", 2)
    elif amount >= 100:
        required = d.approval and d.approval.approvers_required
        assert (d.effect, d.rule_id, required) == ("approve", "refund-needs-approval", 1)
    elif amount > 0:
        assert (d.effect, d.rule_id) == ("allow", "refund-small")
    else:
        assert d.effect == "deny"


@SETTINGS
@given(a=positive, b=positive)
def test_refund_decision_is_monotone_in_the_amount(engine: PolicyEngine, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert strictness(refund(engine, low)) <= strictness(refund(engine, high))


@SETTINGS
@given(
    bound=st.sampled_from([Decimal(100), Decimal(500), Decimal(1000)]),
    epsilon=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.01"), places=4),
)
def test_refund_boundaries_are_exact(engine: PolicyEngine, bound: Decimal, epsilon: Decimal) -> None:
    below, at, above = (
        refund(engine, bound - epsilon),
        refund(engine, bound),
        refund(engine, bound + epsilon),
    )
    if bound == 1000:  # 1000 itself still needs approval; anything above is denied
        assert (at.effect, above.effect) == ("approve", "deny") and below.rule_id == at.rule_id
    else:
        assert below.rule_id != at.rule_id == above.rule_id and strictness(below) < strictness(at)


@SETTINGS
@given(amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2))
def test_the_amount_means_the_same_in_every_number_type(engine: PolicyEngine, amount: Decimal) -> None:
    forms: list[Any] = [amount, str(amount), float(amount)]
    if amount == amount.to_integral_value():
        forms.append(int(amount))
    assert len({(d.effect, d.rule_id) for d in (refund(engine, f) for f in forms)}) == 1


@SETTINGS
@given(value=not_amounts, with_key=st.booleans())
def test_missing_or_malformed_amounts_are_denied(engine: PolicyEngine, value: Any, with_key: bool) -> None:
    args = {"amount": value} if with_key else {"order_id": "ORD-1001"}
    d = engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="issue_refund", args=args, facts=INTERNAL
    )
    assert d.effect == "deny"


@SETTINGS
@given(local=local_part, upper=st.booleans())
def test_mail_inside_the_tenants_domain_is_allowed(engine: PolicyEngine, local: str, upper: bool) -> None:
    domain = "ACME.EXAMPLE" if upper else "acme.example"
    d = email(engine, f"{local}@{domain}")
    assert (d.effect, d.rule_id) == ("allow", "email-inside-domain")


@SETTINGS
@given(local=local_part, domain=domains, sub=st.booleans())
def test_mail_to_any_other_domain_needs_approval(
    engine: PolicyEngine, local: str, domain: str, sub: bool
) -> None:
    domain = f"{domain}.acme.example" if sub else domain  # a subdomain is outside too
    assume(domain != "acme.example")
    d = email(engine, f"{local}@{domain}")
    assert (d.effect, d.rule_id) == ("approve", "email-outside-domain") and d.approval is not None


@SETTINGS
@given(
    to=st.one_of(
        st.text().filter(lambda s: "@" not in s),
        st.tuples(local_part, local_part, domains).map(lambda t: f"{t[0]}@{t[1]}@{t[2]}"),
        st.tuples(local_part, domains).map(lambda t: f"{t[0]} x@{t[1]}"),
        st.tuples(local_part, domains).map(lambda t: f"Name <{t[0]}@{t[1]}>"),
        st.none(),
        st.integers(),
        st.lists(st.just("a@acme.example"), min_size=1, max_size=2),
    )
)
def test_malformed_addresses_are_denied(engine: PolicyEngine, to: Any) -> None:
    assert email(engine, to).effect == "deny"


@SETTINGS
@given(
    agent=st.sampled_from(["refund_agent", "support_agent", "summary_agent", "x", "*"]),
    tool=st.sampled_from(["issue_refund", "send_email", "lookup_order", "delete_account", "*"]),
    amount=st.one_of(amounts, not_amounts),
    to=st.one_of(
        local_part.map(lambda s: f"{s}@acme.example"), local_part.map(lambda s: f"{s}@globex.example")
    ),
    known=facts,
)
def test_missing_facts_never_loosen_the_decision(
    engine: PolicyEngine, agent: str, tool: str, amount: Any, to: str, known: ToolFacts
) -> None:
    args = {"amount": amount, "to": to, "order_id": "ORD-1001"}
    with_facts = engine.decide_tool(tenant_id="acme", agent=agent, tool=tool, args=args, facts=known)
    without = engine.decide_tool(tenant_id="acme", agent=agent, tool=tool, args=args)
    assert strictness(without) >= strictness(with_facts)


@SETTINGS
@given(known=facts, amount=amounts, agent=st.text(max_size=20))
def test_no_facts_lift_a_deny(engine: PolicyEngine, known: ToolFacts, amount: Decimal, agent: str) -> None:
    if amount > 1000:
        assert refund(engine, amount, known).effect == "deny"
    assume(agent not in ("refund_agent", "support_agent"))
    for tool in ("issue_refund", "send_email", "lookup_order"):
        d = engine.decide_tool(tenant_id="acme", agent=agent, tool=tool, args={"amount": amount}, facts=known)
        assert d.effect == "deny"
