"""The tool policy as a tenant sees it, and "explain this decision": shared by the REST API
(/api/policies) and the /admin/policies page.

Both show only the rules that apply in the caller's tenant, never another tenant's own rules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from orchestrator.catalog.registry import CatalogError
from orchestrator.contracts import ApprovalSpec
from orchestrator.errors import Forbidden, ServiceError
from orchestrator.models import Tenant
from orchestrator.policy.engine import ApprovalRule, PolicyRule, ToolFacts
from orchestrator.policy.rules import ALL_TENANTS
from orchestrator.services.state import AppState


class ApprovalPublic(ApprovalSpec):
    """The approval settings in force (`rule_id`: the rule's own approvals.yaml entry, or
    "default"), plus a one-line summary for people."""

    summary: str


class RulePublic(BaseModel):
    id: str
    line: int
    tenant: str
    agent: str
    tool: str
    condition: str
    effect: str
    guard: bool  # an approve rule for any agent/tool: raises an allow to approve, never grants
    approval: ApprovalPublic | None = None


class PoliciesPublic(BaseModel):
    version: str
    rules: list[RulePublic]
    default_approval: ApprovalPublic


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str | None = Field(None, description="Defaults to your tenant; another tenant is refused.")
    agent: str = Field(min_length=1, max_length=200)
    tool: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] | None = Field(
        None,
        description="ToolFacts; a missing side_effect comes from the catalog, a missing tenant_domain "
        "from the tenant, anything else missing takes its strictest value.",
    )


class RuleConsidered(BaseModel):
    id: str
    line: int
    tenant: str
    agent: str
    tool: str
    condition: str
    effect: str
    guard: bool
    matched: bool
    error: str | None = None


class ExplainPublic(BaseModel):
    decision: str
    rule_id: str
    rule: str
    reason: str
    policy_version: str
    approval: ApprovalPublic | None
    facts: dict[str, Any]
    considered: list[RuleConsidered]


def approval_public(rule: ApprovalRule | None) -> ApprovalPublic | None:
    if rule is None:
        return None
    return ApprovalPublic(**rule.spec().model_dump(), summary=rule.describe())


def _rule_public(rule: PolicyRule, approval: ApprovalRule | None) -> RulePublic:
    return RulePublic(
        id=rule.rule_id,
        line=rule.line,
        tenant=rule.tenant,
        agent=rule.agent,
        tool=rule.tool,
        condition=rule.condition,
        effect=rule.effect,
        guard=rule.guard,
        approval=approval_public(approval),
    )


def applies_in(rule: PolicyRule, tenant_id: str) -> bool:
    """Rules written for another tenant are that tenant's business: never shown elsewhere."""
    return rule.tenant in (ALL_TENANTS, tenant_id)


def policies_public(state: AppState, tenant_id: str) -> PoliciesPublic:
    """The policy in force as a tenant sees it (the API and the /admin/policies page)."""
    view = state.policy.view()
    return PoliciesPublic(
        version=view.version,
        rules=[
            _rule_public(r, view.approvals.get(r.rule_id)) for r in view.rules if applies_in(r, tenant_id)
        ],
        default_approval=approval_public(view.default_approval),
    )


def _facts(state: AppState, session: Session, tenant_id: str, body: ExplainRequest) -> ToolFacts:
    given = dict(body.facts or {})
    if "side_effect" not in given:
        try:
            given["side_effect"] = state.catalog.tool(body.tool).spec.side_effect
        except CatalogError:
            pass  # an unknown tool: the strictest side effect
    if "tenant_domain" not in given:
        tenant = session.get(Tenant, tenant_id)
        given["tenant_domain"] = tenant.domain if tenant is not None else ""
    try:
        return ToolFacts.model_validate(given)
    except ValidationError as exc:
        detail = "; ".join(f"facts.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ServiceError(detail, title="Invalid facts") from exc


def explain_decision(
    state: AppState, session: Session, tenant_id: str, body: ExplainRequest
) -> ExplainPublic:
    """Decide as the workers would and say why (the API and the /admin/policies page).

    Raises Forbidden for another tenant and ServiceError (400) for invalid facts."""
    if (body.tenant or tenant_id) != tenant_id:
        raise Forbidden(f"You can only explain decisions in your own tenant ({tenant_id}).")
    facts = _facts(state, session, tenant_id, body)
    result = state.policy.explain(
        tenant_id=tenant_id, agent=body.agent, tool=body.tool, args=body.args, facts=facts
    )
    d = result.decision
    return ExplainPublic(
        decision=d.effect,
        rule_id=d.rule_id,
        rule=d.rule,
        reason=d.reason,
        policy_version=d.policy_version,
        approval=approval_public(d.approval),
        facts=result.facts.model_dump(),
        considered=[
            RuleConsidered(
                id=c.rule.rule_id,
                line=c.rule.line,
                tenant=c.rule.tenant,
                agent=c.rule.agent,
                tool=c.rule.tool,
                condition=c.rule.condition,
                effect=c.rule.effect,
                guard=c.rule.guard,
                matched=c.matched,
                error=c.error or None,
            )
            for c in result.checks
            if applies_in(c.rule, tenant_id)
        ],
    )
