"""Developer pages: the catalog of workflows, agents and tools, and the task preview.

    GET  /catalog                      the three lists, one row per name (newest version), ?q= filter
    GET  /catalog/workflows/{ref}      steps in order, pinned agents and tools, intake examples, budget
    GET  /catalog/agents/{ref}         instructions, tier ladder, validator, output schema, used by
    GET  /catalog/tools/{ref}          argument fields, raw schema, the policy rules that name it
    GET  /catalog/preview              the preview form
    POST /catalog/preview              what a request would run, need and cost (nothing starts)

The pages read what the REST API returns (`workflow_info`, `agent_info`, `tool_info` of
`orchestrator.services.catalog`) and preview with `preview_request`, as POST /api/tasks/preview
does; this module only arranges it for people.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse

from orchestrator.api.deps import StateDep
from orchestrator.api.errors import Forbidden, NotFound, ServiceError
from orchestrator.catalog.registry import CatalogError
from orchestrator.policy.rules import ALL_TENANTS, PolicyRule
from orchestrator.services.catalog import agent_info, tool_info, workflow_info
from orchestrator.services.preview_request import preview_request
from orchestrator.services.state import AppState
from orchestrator.web.deps import CsrfChecked, WebAllowed, WebUser, WebUserDep, allowed
from orchestrator.web.render import render
from orchestrator.web.tasks import task_request

router = APIRouter(include_in_schema=False)
CatalogReader = Annotated[WebUser, Depends(WebAllowed("catalog", "read"))]
T = TypeVar("T")


# --- the lists -----------------------------------------------------------------------------------


def _names(refs: list[str], needle: str) -> list[str]:
    """One entry per name (its bare name resolves to the newest version), filtered by `needle`."""
    return sorted({r.split("@", 1)[0] for r in refs if needle in r.split("@", 1)[0].lower()})


def tenant_rules(state: AppState, user: WebUser, rule_ids: list[str]) -> list[PolicyRule]:
    """The rules among `rule_ids` that apply in the person's tenant (never another tenant's)."""
    wanted = set(rule_ids)
    return [
        r
        for r in state.policy.view().rules
        if r.rule_id in wanted and r.tenant in (ALL_TENANTS, user.tenant_id)
    ]


@router.get("/catalog", name="web_catalog")
def catalog_index(
    request: Request, state: StateDep, user: CatalogReader, q: Annotated[str, Query(max_length=100)] = ""
) -> HTMLResponse:
    needle = q.strip().lower()
    catalog = state.catalog
    tools = [tool_info(state, n, user.tenant_id) for n in _names(catalog.refs("tool"), needle)]
    context = {
        "q": q.strip(),
        "workflows": [workflow_info(state, n) for n in _names(catalog.workflow_refs(), needle)],
        "agents": [agent_info(catalog, n) for n in _names(catalog.refs("agent"), needle)],
        "tools": [(t, [r.rule_id for r in tenant_rules(state, user, t.policies)]) for t in tools],
        "registered": {
            "workflows": bool(catalog.workflow_refs()),
            "agents": bool(catalog.refs("agent")),
            "tools": bool(catalog.refs("tool")),
        },
    }
    return render(request, "catalog/index.html", context)


# --- one definition ------------------------------------------------------------------------------


def _found(build: Callable[[], T], kind: str, ref: str) -> T:
    try:
        return build()
    except CatalogError as exc:
        raise NotFound(
            f"There is no {kind} {ref!r} in the catalog. Check the name and version "
            f"(name@version, or just the name for the newest) on the catalog page.",
            title=f"Unknown {kind}",
        ) from exc


def _with_kinds(state: AppState, refs: list[str]) -> list[tuple[str, str]]:
    """(ref, kind) so a page can link each of `used_by` to the right detail page."""
    return [(ref, state.catalog.kind_of(ref) or "workflow") for ref in refs]


@router.get("/catalog/workflows/{ref}", name="web_catalog_workflow")
def workflow_page(request: Request, state: StateDep, user: CatalogReader, ref: str) -> HTMLResponse:
    info = _found(lambda: workflow_info(state, ref), "workflow", ref)
    context = {"wf": info, "tenant_default_budget": state.budgets.rules.task.default_limit_usd}
    return render(request, "catalog/workflow.html", context)


@router.get("/catalog/agents/{ref}", name="web_catalog_agent")
def agent_page(request: Request, state: StateDep, user: CatalogReader, ref: str) -> HTMLResponse:
    info = _found(lambda: agent_info(state.catalog, ref), "agent", ref)
    tools = [(t, state.catalog.tool(t).spec.side_effect) for t in info.tools]
    context = {"agent": info, "tools": tools, "used_by": _with_kinds(state, info.used_by)}
    return render(request, "catalog/agent.html", context)


@router.get("/catalog/tools/{ref}", name="web_catalog_tool")
def tool_page(request: Request, state: StateDep, user: CatalogReader, ref: str) -> HTMLResponse:
    info = _found(lambda: tool_info(state, ref, user.tenant_id), "tool", ref)
    view = state.policy.view()
    rules = [
        (r, view.approvals[r.rule_id].describe() if r.rule_id in view.approvals else "")
        for r in tenant_rules(state, user, info.policies)
    ]
    context = {
        "tool": info,
        "fields": arg_fields(info.args_schema),
        "rules": rules,
        "used_by": _with_kinds(state, info.used_by),
    }
    return render(request, "catalog/tool.html", context)


# --- argument schema as a table ------------------------------------------------------------------


@dataclass(frozen=True)
class ArgField:
    name: str
    type: str
    required: bool
    description: str
    constraints: list[str]


CONSTRAINTS = [
    ("pattern", "matches {}"),
    ("format", "format {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
]


def arg_fields(schema: dict[str, Any]) -> list[ArgField]:
    """The top-level fields of a pydantic JSON schema, for people (the raw schema is shown too)."""
    required = set(schema.get("required", []))
    return [
        ArgField(name, _type(prop), name in required, str(prop.get("description", "")), _constraints(prop))
        for name, prop in schema.get("properties", {}).items()
    ]


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"object ({str(prop['$ref']).rsplit('/', 1)[-1]})"
    variants = prop.get("anyOf") or prop.get("oneOf")
    if variants:
        return " or ".join(_type(v) for v in variants)
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _constraints(prop: dict[str, Any]) -> list[str]:
    """Limits of the field itself and of each alternative type (labelled with that type)."""
    out: list[str] = []
    variants = prop.get("anyOf") or prop.get("oneOf") or []
    for variant in [prop, *variants]:
        prefix = f"{variant.get('type', '')}: " if variant is not prop else ""
        out += [prefix + label.format(variant[key]) for key, label in CONSTRAINTS if key in variant]
        if "enum" in variant:
            out.append(prefix + "one of " + ", ".join(str(v) for v in variant["enum"]))
        if "const" in variant:
            out.append(prefix + f"exactly {json.dumps(variant['const'])}")
    if "default" in prop:
        out.append(f"default {json.dumps(prop['default'], default=str)}")
    return out


# --- preview -------------------------------------------------------------------------------------


def may_preview(state: AppState, user: WebUser) -> None:
    """Requesters preview before they submit; developers (catalog:read) preview their definitions."""
    if not (allowed(state, user, "task", "submit") or allowed(state, user, "catalog", "read")):
        roles = ", ".join(user.principal.roles) or "none"
        raise Forbidden(
            f"Previewing a task needs permission to submit tasks or to read the catalog in this tenant (yours: {roles})."
        )


def _preview_context(state: AppState, user: WebUser, values: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "workflows": [(ref, state.catalog.pin(ref).description) for ref in state.catalog.workflow_refs()],
        "max_budget": state.budgets.max_task_budget(user.tenant_id),
        "values": {"input": "", "workflow": "", "budget_usd": ""} | values,
        "can_submit": allowed(state, user, "task", "submit"),
        **extra,
    }


@router.get("/catalog/preview", name="web_preview")
def preview_form(
    request: Request, state: StateDep, user: WebUserDep, workflow: Annotated[str, Query(max_length=160)] = ""
) -> HTMLResponse:
    may_preview(state, user)
    return render(request, "catalog/preview.html", _preview_context(state, user, {"workflow": workflow}))


@router.post("/catalog/preview", name="web_preview_run")
def preview_run(
    request: Request,
    state: StateDep,
    user: CsrfChecked,
    input: Annotated[str, Form(max_length=32000)] = "",
    workflow: Annotated[str, Form(max_length=160)] = "",
    budget_usd: Annotated[str, Form(max_length=40)] = "",
    choose: Annotated[str, Form(max_length=160)] = "",
) -> HTMLResponse:
    may_preview(state, user)
    workflow = choose or workflow  # one of intake's guesses, clicked after an ambiguous request
    values = {"input": input, "workflow": workflow, "budget_usd": budget_usd}
    try:
        result = preview_request(state, user.tenant_id, task_request(input, workflow, budget_usd, {}))
    except ServiceError as exc:
        context = _preview_context(
            state, user, values, error=exc.detail, options=exc.extra.get("options", [])
        )
        return render(request, "catalog/preview.html", context, 422 if exc.status < 500 else exc.status)
    return render(request, "catalog/preview.html", _preview_context(state, user, values, preview=result))
