"""The typed developer API (`orchestrator.catalog.api`) and the catalog REST routes.

The fixture package `catalog_fixtures.typed_pkg` (tests/catalog_fixtures) registers two tools, three
agents and a workflow using every step kind; `sqlite_db` (conftest) is a seeded SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from catalog_fixtures import typed_pkg
from catalog_fixtures.bad_model_pkg import OpaqueAnswer
from catalog_fixtures.typed_pkg import Answer, EchoArgs, fx_echo, save_note

from orchestrator.app import build_state, create_app
from orchestrator.catalog.api import (
    CatalogModule,
    ToolContext,
    agent,
    agent_step,
    checkpoint_step,
    register,
    tool,
    tool_def,
    workflow,
)
from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.catalog.validate import validate_catalog
from orchestrator.settings import Settings

PACKAGES = ["orchestrator.demo.catalog", "catalog_fixtures.typed_pkg", "catalog_fixtures.typed_pkg_v2"]


# --- the typed API -----------------------------------------------------------------------------------


def test_the_fixture_package_registers_tools_agents_and_a_workflow() -> None:
    catalog = load_catalog(["catalog_fixtures.typed_pkg"])
    assert catalog.refs("tool") == ["fx_echo@1", "fx_save_note@2"]
    assert catalog.refs("agent") == ["fx_helper@1", "fx_judge@1", "fx_planner@1"]
    assert catalog.workflow_refs() == ["fx_flow@1"]

    echo = catalog.tool("fx_echo@1")
    assert echo.impl is fx_echo and echo.args_model is EchoArgs
    assert echo.spec.description == "Echo the text back, unchanged."  # the docstring
    assert echo.spec.side_effect == "read" and echo.spec.cost_usd is None
    assert echo.spec.args_schema["properties"]["text"]["maxLength"] == 200
    note = catalog.tool("fx_save_note").spec  # a bare name: the newest version
    assert (note.ref, note.side_effect, note.cost_usd) == ("fx_save_note@2", "write", "0.001")

    helper = catalog.agent("fx_helper@1").spec
    assert helper.tier == "tier-slm" and helper.ladder == ["tier-slm", "tier-frontier"]
    assert helper.tools == ["fx_echo@1", "fx_save_note@2"]
    assert helper.validator is not None and helper.validator.judge_agent == "fx_judge@1"
    assert (helper.review_role, helper.step_budget_usd) == ("admin", "0.05")
    assert helper.output_model == "catalog_fixtures.typed_pkg.Answer"
    assert catalog.output_models[helper.output_model] is Answer
    assert catalog.agent("fx_judge@1").spec.ladder == ["tier-frontier"]

    wf = catalog.workflow("fx_flow@1")
    assert [(s.name, s.kind) for s in wf.steps] == [
        ("answer", "agent"),
        ("save", "tool"),
        ("review", "checkpoint"),
        ("plan", "planner"),
    ]
    save, review, plan = wf.steps[1:]
    assert save.tool == "fx_save_note@2" and save.args == {"note": "{steps.answer.answer}"}
    assert review.assignee_role == "approver" and review.review == "output_review"
    assert plan.agent == "fx_planner@1" and plan.planner_agents == ["fx_helper@1"]
    assert plan.require_plan_review and plan.when == "steps.answer.answer"
    assert (wf.default_budget_usd, wf.risk_class, wf.max_task_turns) == ("0.25", "medium", 12)
    assert catalog.sources["fx_flow@1"] == "catalog_fixtures.typed_pkg"
    assert not [i for i in validate_catalog(catalog) if i.severity == "error"]


def test_pin_takes_every_step_kind_the_judge_and_the_planners_agents() -> None:
    pinned = load_catalog(["catalog_fixtures.typed_pkg"]).pin("fx_flow@1")
    assert set(pinned.agents) == {"fx_helper@1", "fx_judge@1", "fx_planner@1"}
    assert set(pinned.tools) == {"fx_echo", "fx_save_note"}
    assert pinned.tools["fx_save_note"].ref == "fx_save_note@2"


async def test_the_decorator_returns_the_function_unchanged() -> None:
    assert tool_def(fx_echo).impl is fx_echo and fx_echo.__name__ == "fx_echo"
    assert await fx_echo(EchoArgs(text="hi"), None) == {"text": "hi"}  # type: ignore[arg-type]  # no context needed
    assert tool_def(save_note).ref == "fx_save_note@2"  # name= overrides the function's name


def test_register_adds_in_order_and_brings_what_a_definition_uses() -> None:
    catalog = Catalog()
    register(catalog, typed_pkg.flow)  # only the workflow: its steps bring agents and tools
    assert catalog.refs("agent") == ["fx_helper@1", "fx_planner@1"]
    assert catalog.refs("tool") == ["fx_echo@1", "fx_save_note@2"]
    # the judge is named by text in the validator, so it is not brought in: validation says so
    messages = [i.message for i in validate_catalog(catalog) if i.severity == "error"]
    assert messages == ["validator.judge_agent: unknown agent 'fx_judge@1'"]

    ordered = Catalog()
    register(ordered, save_note, fx_echo, typed_pkg.judge)
    assert list(ordered.tools) == ["fx_save_note@2", "fx_save_note", "fx_echo@1", "fx_echo"]


def test_registering_a_module_twice_refuses_the_workflow() -> None:
    catalog = Catalog()
    typed_pkg.register(catalog)
    with pytest.raises(CatalogError, match=r"^fx_flow@1 is registered twice$"):
        typed_pkg.register(catalog)  # tools and agents already there with the same code: skipped


def test_a_catalog_module_collects_definitions() -> None:
    module = CatalogModule()

    @module.tool("mod_echo", "3", side_effect="irreversible", cost_usd=0.5)
    async def echo(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
        """Echo."""
        return {}

    bot = module.agent("mod_bot", "1", instructions="x", tier="tier-open", tools=[echo], output_model=Answer)
    module.workflow("mod_flow", "1", description="x", steps=[agent_step("go", bot), checkpoint_step("ok")])
    catalog = Catalog()
    module.register(catalog)
    assert catalog.refs("tool") == ["mod_echo@3"] and catalog.tool("mod_echo@3").spec.cost_usd == "0.5"
    assert catalog.pin("mod_flow@1").agents["mod_bot@1"].tools == ["mod_echo@3"]


async def _ok(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Fine."""
    return {}


def _sync(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
    """Not async."""
    return {}


async def _untyped(args, ctx):
    """No model."""
    return {}


async def _undocumented(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
    return {}


async def _one_param(args: EchoArgs) -> dict[str, Any]:
    """One parameter."""
    return {}


def _plain(args: EchoArgs, ctx: Any) -> None:
    pass


AGENT = {"instructions": "x", "tier": "tier-slm", "output_model": Answer}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tool(side_effect="read")(_sync), r"@tool '_sync': a tool must be an async function"),
        (
            lambda: tool(side_effect="read")(_untyped),
            r"tool _untyped@1: annotate the first parameter \(args\)",
        ),
        (lambda: tool(side_effect="read")(_undocumented), r"tool _undocumented@1: give it a docstring"),
        (lambda: tool(side_effect="read")(_one_param), r"must take \(args, ctx\), not 1 parameter"),
        (
            lambda: tool(side_effect="delete")(_ok),
            r"side_effect 'delete' must be one of read, write, irreversible",
        ),
        (lambda: tool(side_effect="read", cost_usd="-1")(_ok), r"cost_usd must be a non-negative amount"),
        (lambda: tool("bad name", side_effect="read")(_ok), r"name 'bad name' must be letters"),
        (
            lambda: tool(version="2@x", side_effect="read")(_ok),
            r"version must be a non-empty string without '@'",
        ),
        (
            lambda: agent("a", "1", instructions="x", output_model=Answer),
            r"agent a@1: give tier= or a ladder",
        ),
        (
            lambda: agent(
                "a", "1", instructions="x", tier="tier-open", tiers=["tier-slm"], output_model=Answer
            ),
            r"agent a@1: tier 'tier-open' must be the first rung of tiers \['tier-slm'\]",
        ),
        (
            lambda: agent("a", "1", tools=["fx_echo"], **AGENT),
            r"agent a@1: tools 'fx_echo' must be tool name@version",
        ),
        (lambda: agent("a", "1", tools=[_plain], **AGENT), r"agent a@1: tools .* is not a tool"),
        (
            lambda: agent("a", "1", instructions="x", tier="t", output_model=dict),
            r"output_model must be a pydantic",
        ),
        (
            lambda: agent("a", "1", instructions="x", tier="t", output_model=OpaqueAnswer),
            r"agent a@1: output model .*OpaqueAnswer does not serialize to a JSON schema",
        ),
        (lambda: agent("a", "1", max_turns=0, **AGENT), r"max_turns and max_tokens must be at least 1"),
        (lambda: agent_step("s", "fx_helper"), r"step s: agent 'fx_helper' must be agent name@version"),
        (lambda: checkpoint_step("s", review="maybe"), r"step s: review: Input should be"),
        (
            lambda: workflow("w", "1", description="x", steps=[], risk_class="extreme"),
            r"workflow w@1: risk_class: Input should be 'low', 'medium' or 'high'",
        ),
        (
            lambda: workflow("w", "1", description="x", steps=[{"name": "s", "kind": "loop"}]),
            r"workflow w@1: steps\[0\]: kind: Input should be",
        ),
        (lambda: register(Catalog(), 42), r"cannot register 42: not a tool, agent, workflow"),
    ],
)
def test_mistakes_raise_clear_errors(make: Any, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        make()


def test_add_agent_names_the_agent_whose_output_model_has_no_schema() -> None:
    with pytest.raises(CatalogError, match=r"^agent opaque_agent@1: output model .* does not serialize"):
        load_catalog(["catalog_fixtures.bad_model_pkg"])


# --- REST ----------------------------------------------------------------------------------------------


@pytest.fixture
async def api(sqlite_db: Any, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=sqlite_db.url, state_dir=tmp_path, catalog_packages=PACKAGES)
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://frontdesk"
    ) as client:
        yield client


def auth(db: Any, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {db.tokens[who]}"}


async def test_workflows_stay_compatible_and_add_versions(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    r = await api.get("/api/workflows", headers=auth(sqlite_db, "ada"))
    assert r.status_code == 200
    by_ref = {w["ref"]: w for w in r.json()}
    assert {"fx_flow@1", "fx_flow@2", "refund_request@1", "summary@1"} <= set(by_ref)
    flow = by_ref["fx_flow@1"]
    for key in ("name", "version", "description", "category", "risk_class", "data_classification"):
        assert key in flow
    assert flow["versions"] == ["1", "2"] and flow["default_budget_usd"] == "0.25"
    assert set(flow["agents"]) == {"fx_helper@1", "fx_judge@1", "fx_planner@1"}
    assert {t["ref"] for t in flow["tools"]} == {"fx_echo@1", "fx_save_note@2"}
    assert [s["kind"] for s in flow["steps"]] == ["agent", "tool", "checkpoint", "planner"]
    one = await api.get("/api/workflows/fx_flow", headers=auth(sqlite_db, "dev"))
    assert one.status_code == 200 and one.json()["ref"] == "fx_flow@2"  # a bare name: the newest
    missing = await api.get("/api/workflows/nope@1", headers=auth(sqlite_db, "dev"))
    assert missing.status_code == 404 and "unknown workflow 'nope@1'" in missing.json()["detail"]


async def test_agents(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    r = await api.get("/api/agents", headers=auth(sqlite_db, "blake"))
    assert r.status_code == 200
    refs = [a["ref"] for a in r.json()]
    assert refs.index("fx_helper@1") + 1 == refs.index("fx_helper@2") and "refund_agent@1" in refs
    got = (await api.get("/api/agents/fx_helper@1", headers=auth(sqlite_db, "blake"))).json()
    assert got["versions"] == ["1", "2"] and got["ladder"] == ["tier-slm", "tier-frontier"]
    assert got["tools"] == ["fx_echo@1", "fx_save_note@2"] and got["validator"]["kind"] == "judge"
    assert got["output_schema"]["properties"]["confidence"]["maximum"] == 1
    assert got["used_by"] == ["fx_flow@1"]  # fx_flow@2 pins fx_helper@2
    latest = (await api.get("/api/agents/fx_helper", headers=auth(sqlite_db, "blake"))).json()
    assert latest["ref"] == "fx_helper@2" and latest["validator"]["kind"] == "confidence"
    missing = await api.get("/api/agents/ghost@1", headers=auth(sqlite_db, "blake"))
    assert missing.status_code == 404 and "unknown agent 'ghost@1'" in missing.json()["detail"]


async def test_tools_show_side_effect_schema_and_policies(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    r = await api.get("/api/tools", headers=auth(sqlite_db, "ada"))
    assert r.status_code == 200
    tools = {t["ref"]: t for t in r.json()}
    refund = tools["issue_refund@1"]
    assert refund["side_effect"] == "irreversible" and refund["versions"] == ["1"]
    assert "refund-small" in refund["policies"] and len(refund["policy_version"]) == 64
    assert "amount" in refund["args_schema"]["properties"]
    assert tools["fx_echo@1"]["policies"] == []  # no rule names it: every call is denied
    one = (await api.get("/api/tools/fx_save_note@2", headers=auth(sqlite_db, "ada"))).json()
    assert (one["side_effect"], one["cost_usd"], one["used_by"]) == (
        "write",
        "0.001",
        ["fx_flow@1", "fx_helper@1"],
    )
    missing = await api.get("/api/tools/fx_save_note@1", headers=auth(sqlite_db, "ada"))
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["/api/agents", "/api/tools/fx_echo@1", "/api/workflows"])
async def test_catalog_routes_need_a_token(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 401


async def test_me_is_unchanged(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    me = (await api.get("/api/me", headers=auth(sqlite_db, "dev"))).json()
    assert me["tenant_id"] == "acme" and me["roles"] == ["developer"]


async def test_tool_rules_of_another_tenant_stay_hidden(sqlite_db: Any, tmp_path: Path) -> None:
    import shutil

    policies = tmp_path / "policies"
    shutil.copytree(Settings().policies_dir, policies)
    lines = (policies / "tool_policy.csv").read_text().splitlines()
    first_rule = next(i for i, line in enumerate(lines) if line.startswith("p,"))
    lines.insert(first_rule, "p, globex, refund_agent, issue_refund, money(r.args.amount) > 5000, deny, globex-refund-cap")
    (policies / "tool_policy.csv").write_text("\n".join(lines) + "\n")
    settings = Settings(
        database_url=sqlite_db.url, state_dir=tmp_path, policies_dir=policies, catalog_packages=PACKAGES[:1]
    )
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as c:
        acme = (await c.get("/api/tools/issue_refund", headers=auth(sqlite_db, "ada"))).json()
        globex = (await c.get("/api/tools/issue_refund", headers=auth(sqlite_db, "gina"))).json()
        listed = (await c.get("/api/tools", headers=auth(sqlite_db, "ada"))).json()
    assert "globex-refund-cap" in globex["policies"]
    assert "globex-refund-cap" not in acme["policies"] and "refund-needs-approval" in acme["policies"]
    assert all("globex-refund-cap" not in t["policies"] for t in listed)


def test_an_unknown_workflow_on_an_empty_catalog_says_none_is_registered() -> None:
    with pytest.raises(CatalogError, match="no workflow is registered; name your catalog packages in "
                                           "FRONTDESK_CATALOG_PACKAGES"):  # fmt: skip
        load_catalog([]).workflow("refund_request@1")
    with pytest.raises(CatalogError, match=r"known: fx_flow@1"):
        load_catalog(["catalog_fixtures.typed_pkg"]).workflow("nope@1")
