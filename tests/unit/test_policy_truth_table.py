"""Truth tables: the shipped policy files against a plain-Python statement of the intended policy.

The expected outcome of every case is computed here, independently of the engine: if a policy
file changes what someone may do, this statement of intent has to change with it.

* tools: tenant x agent x tool x arguments x facts (the facts a worker passes, or none);
* people: tenant x role x object:action, and users holding roles in several tenants, asking in
  every tenant; a role held in tenant A never allows anything in tenant B.
"""

from __future__ import annotations

import itertools
import shutil
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
from repo_paths import SHIPPED_POLICIES

from orchestrator.policy.engine import PolicyEngine, ToolFacts
from orchestrator.policy.rules import split_line

SHIPPED = SHIPPED_POLICIES

# --- the intended tool policy -----------------------------------------------------------------------

TENANT_DOMAINS = {"acme": "acme.example", "globex": "globex.example", "initech": ""}  # "" = unknown
AGENTS = [
    "refund_agent", "support_agent", "summary_agent", "rogue_agent", "",
    "support_triage", "support_writer", "contract_extractor", "contract_risk",
    # the tool steps of a workflow are authorized as agent `workflow:<workflow name>`
    "workflow:ticket_triage", "workflow:refund_request", "workflow:contract_review", "workflow:",
]  # fmt: skip
SIDE_EFFECTS = {  # as the catalog declares them; unknown tools are irreversible
    "lookup_order": "read",
    "lookup_ticket": "read",
    "send_email": "write",
    "update_ticket": "write",
    "issue_refund": "irreversible",
    "delete_account": "irreversible",
    "*": "irreversible",
}
MISSING = object()
AMOUNTS: list[Any] = [
    Decimal("0.01"), "99.99", 99.99, Decimal("100"), 100, "499.99", 500, "500.00", Decimal("999.99"),
    1000, Decimal("1000.00"), "1000.01", 1000.01, 5000, 0, Decimal("-5"), "abc", "NaN", "Infinity",
    True, None, [100], MISSING,
]  # fmt: skip
ADDRESSES: list[Any] = [
    "x@acme.example", "Y@ACME.Example", "z@globex.example", "a@acme.example.evil.example",
    "acme.example@evil.example", "bad", "a@b@acme.example", "a b@acme.example", "", 42, MISSING,
]  # fmt: skip
ARGS: dict[str, list[dict[str, Any]]] = {
    "issue_refund": [{"order_id": "ORD-1001", "amount": a} if a is not MISSING else {} for a in AMOUNTS],
    "send_email": [{"to": a, "subject": "s", "body": "b"} if a is not MISSING else {} for a in ADDRESSES],
    "lookup_order": [{"order_id": "ORD-1001"}, {}],
    "lookup_ticket": [{"ticket_id": "TCK-2001"}, {}],
    "update_ticket": [
        {"ticket_id": "TCK-2001", "status": "answered", "intent": "login", "reply": "Hello"},
        {},
    ],
    "delete_account": [{"account": "all"}],
    "*": [{}],
}
CLASSIFICATIONS = ["public", "internal", "confidential", None]  # None: the caller passed no facts


def intended_amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def intended_domain(value: Any) -> str | None:
    if not isinstance(value, str) or value.count("@") != 1 or any(c.isspace() for c in value):
        return None
    local, domain = value.split("@")
    return domain.lower() if local and "." in domain else None


def intended_tool(
    agent: str, tool: str, args: dict[str, Any], facts: ToolFacts | None
) -> tuple[str, str, int]:
    """(effect, rule id, approvers required) as the policy is meant to be, in plain Python."""
    confidential = facts is None or facts.data_classification == "confidential"
    irreversible = facts is None or facts.side_effect == "irreversible"
    domain = facts.tenant_domain if facts is not None else ""
    grant: tuple[str, str, int]
    if agent == "refund_agent" and tool == "issue_refund":
        amount = intended_amount(args.get("amount"))
        if amount is None:
            return ("deny", "refund-over-limit", 0)  # the first refund rule cannot read the amount
        if amount > 1000:
            return ("deny", "refund-over-limit", 0)  # denied above 1000, whatever the facts
        if amount >= 500:
            return ("approve", "refund-large-two-approvers", 2)
        if amount >= 100:
            return ("approve", "refund-needs-approval", 1)
        if amount <= 0:
            return ("deny", "", 0)
        grant = ("allow", "refund-small", 0)
    elif agent in ("refund_agent", "support_agent") and tool == "send_email":
        to = intended_domain(args.get("to"))
        if to is None:
            return ("deny", "email-outside-domain", 0)
        if to != domain:
            return ("approve", "email-outside-domain", 1)  # outside, or the tenant's domain unknown
        grant = ("allow", "email-inside-domain", 0)
    elif agent in ("refund_agent", "support_agent") and tool == "lookup_order":
        grant = ("allow", "order-lookup", 0)
    elif agent == "workflow:refund_request" and tool == "send_email":
        # The refund workflow's own step mails the order's customer through the shop's relay
        # (example.com) unreviewed; any other recipient - the address is model output - needs a person.
        to = intended_domain(args.get("to"))
        if to is None:
            return ("deny", "refund-customer-email", 0)
        if to != "example.com":
            return ("approve", "refund-email-elsewhere", 1)
        grant = ("allow", "refund-customer-email", 0)
    elif agent == "support_triage" and tool == "lookup_ticket":
        grant = ("allow", "ticket-lookup", 0)
    elif agent == "workflow:ticket_triage" and tool == "update_ticket":
        grant = ("allow", "ticket-answer", 0)  # the triage workflow's step answers the ticket
    else:
        return ("deny", "", 0)  # deny by default: no agent has any other tool
    if confidential and irreversible:
        return ("approve", "confidential-irreversible", 1)
    return grant


def tool_cases() -> list[tuple[str, str, str, dict[str, Any], ToolFacts | None]]:
    cases = []
    for tenant, agent, tool, classification in itertools.product(
        TENANT_DOMAINS, AGENTS, SIDE_EFFECTS, CLASSIFICATIONS
    ):
        facts = (
            None
            if classification is None
            else ToolFacts(
                side_effect=SIDE_EFFECTS[tool],
                data_classification=classification,
                risk_class="high",
                category="customer-service",
                tenant_domain=TENANT_DOMAINS[tenant],
            )
        )
        cases.extend((tenant, agent, tool, args, facts) for args in ARGS[tool])
    return cases


TOOL_CASES = tool_cases()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> PolicyEngine:
    target = tmp_path_factory.mktemp("policies") / "policies"
    shutil.copytree(SHIPPED, target)
    return PolicyEngine(target, reload_interval=3600)


def test_tool_truth_table(engine: PolicyEngine) -> None:
    assert len(TOOL_CASES) >= 500
    wrong = []
    effects: dict[str, int] = {}
    for tenant, agent, tool, args, facts in TOOL_CASES:
        d = engine.decide_tool(tenant_id=tenant, agent=agent, tool=tool, args=args, facts=facts)
        got = (d.effect, d.rule_id, d.approval.approvers_required if d.approval else 0)
        want = intended_tool(agent, tool, args, facts)
        effects[d.effect] = effects.get(d.effect, 0) + 1
        if got != want or d.policy_version != engine.version or (d.effect == "approve") != bool(d.approval):
            wrong.append((tenant, agent, tool, args, facts, got, want))
    assert wrong == [], f"{len(wrong)} of {len(TOOL_CASES)} cases differ, e.g. {wrong[:3]}"
    assert min(effects.values()) > 50 and set(effects) == {"allow", "approve", "deny"}


def test_no_agent_may_email_outside_the_tenants_own_domain(engine: PolicyEngine) -> None:
    """A model never picks an outside recipient unreviewed; of the workflows' own tool steps only
    the refund workflow's customer e-mail may go out without approval."""
    for tenant, agent, tool, args, facts in TOOL_CASES:
        d = engine.decide_tool(tenant_id=tenant, agent=agent, tool=tool, args=args, facts=facts)
        if tool == "send_email" and d.effect == "allow":
            assert facts is not None
            if agent == "workflow:refund_request":
                assert d.rule_id == "refund-customer-email" and intended_domain(args["to"]) == "example.com"
                continue
            assert facts.tenant_domain
            assert intended_domain(args["to"]) == TENANT_DOMAINS[tenant]


# --- the intended people policy ---------------------------------------------------------------------

INTENDED_PEOPLE: dict[str, set[str]] = {
    "requester": {"task:submit", "task:read_own", "task:cancel_own", "catalog:read"},
    "approver": {
        "task:read_all", "checkpoint:read", "checkpoint:decide", "checkpoint:comment", "catalog:read",
    },
    "developer": {"catalog:read", "task:read_own", "policy:read", "policy:explain"},
    "admin": {
        "task:read_all", "task:cancel_any", "checkpoint:read", "checkpoint:decide", "checkpoint:comment",
        "checkpoint:reassign",
        "catalog:read", "audit:read", "policy:read", "policy:explain", "budget:read", "budget:write",
        "switch:read", "switch:flip", "cost:read", "user:read", "user:write",
    },
    "platform_admin": {"switch:read", "switch:flip_global"},
    "auditor": {
        "audit:read", "task:read_all", "checkpoint:read", "cost:read", "catalog:read", "policy:read",
        "budget:read", "switch:read", "user:read",
    },
}  # fmt: skip
ROLES = [*INTENDED_PEOPLE, "superuser", "", "ADMIN"]
TENANTS = ["acme", "globex", "initech"]


def shipped_actions() -> set[str]:
    lines = (SHIPPED / "people_policy.csv").read_text().splitlines()
    return {f"{t[3]}:{t[4]}" for t in map(split_line, lines) if t and t[0] == "p"}


ACTIONS = sorted(
    set().union(*INTENDED_PEOPLE.values())
    | shipped_actions()
    | {"task:delete", "policy:write", "tenant:create", "checkpoint:decide_own", "audit:write"}
)
MEMBERSHIPS = {  # user -> tenant -> roles held there
    "ada": {"acme": ["admin"]},
    "gina": {"globex": ["requester", "approver", "admin"]},
    "multi": {"acme": ["requester"], "globex": ["admin"], "initech": ["developer"]},
    "nobody": {},
}


def intended_people(roles: list[str], obj_act: str) -> bool:
    return any(obj_act in INTENDED_PEOPLE.get(role, set()) for role in roles)


def test_people_truth_table(engine: PolicyEngine) -> None:
    cases = list(itertools.product(TENANTS, ROLES, ACTIONS))
    assert len(cases) >= 500
    wrong = [
        (tenant, role, action)
        for tenant, role, action in cases
        if engine.allowed([role], tenant, *action.split(":")) != intended_people([role], action)
    ]
    assert wrong == []


def test_people_never_cross_tenants(engine: PolicyEngine) -> None:
    cross_tenant_allows = []
    for user, tenant, action in itertools.product(MEMBERSHIPS, TENANTS, ACTIONS):
        roles = MEMBERSHIPS[user].get(tenant, [])  # the roles the user holds in the tenant asked
        allowed = engine.allowed(roles, tenant, *action.split(":"))
        assert allowed == intended_people(roles, action), (user, tenant, action)
        if allowed and not roles:
            cross_tenant_allows.append((user, tenant, action))
    assert cross_tenant_allows == []


def test_a_tenant_scoped_grant_stays_in_its_tenant(tmp_path: Path) -> None:
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target)
    with (target / "people_policy.csv").open("a") as f:
        f.write("p, approver, acme, budget, read\n")
    engine = PolicyEngine(target)
    assert engine.allowed(["approver"], "acme", "budget", "read")
    assert not any(
        engine.allowed(["approver"], t, "budget", "read") for t in ("globex", "initech", "all-tenants")
    )
