"""`frontdesk policy check|explain` and the /api/policies routes (`sqlite_db`, from conftest, is a
migrated and seeded SQLite database with tokens for acme and globex users)."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from repo_paths import SHIPPED_POLICIES

from orchestrator.api import errors
from orchestrator.api.routes import policies as policy_routes
from orchestrator.app import build_state
from orchestrator.cli import policy_cmd
from orchestrator.policy.engine import PolicyEngine
from orchestrator.settings import Settings


@pytest.fixture(autouse=True)
def sample_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """`policy explain` takes a tool's side effect from the catalog the settings name: the sample one."""
    settings = Settings(_env_file=None, catalog_packages=["orchestrator.demo.catalog"])
    monkeypatch.setattr(policy_cmd, "get_settings", lambda: settings)


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED_POLICIES, target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="frontdesk")
    policy_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr().out


# --- check ------------------------------------------------------------------------------------------


def test_check_passes_on_the_shipped_policies(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "check", "--dir", str(policies))
    assert code == 0
    assert f"policy version {PolicyEngine(policies).version}" in out and "lints clean" in out


def test_check_prints_each_error_and_exits_1(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = len((policies / "tool_policy.csv").read_text().splitlines()) + 1
    with (policies / "tool_policy.csv").open("a") as f:
        f.write("p, all-tenants, *, *, True, allow, everything\np, all-tenants, a, b, True, allow\n")
    code, out = run(capsys, "policy", "check", "--dir", str(policies))
    assert code == 1
    assert f"error: tool_policy.csv:{first}: over-matching" in out
    assert (
        f"error: tool_policy.csv:{first + 1}: expected p, tenant, agent, tool, condition, effect, rule_id"
        in out
    )
    assert "2 error(s), 0 warning(s)" in out and "policy version " in out


def test_check_warnings_do_not_fail(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (policies / "people_policy.csv").open("a") as f:
        f.write("p, inspector, all-tenants, audit, read\n")
    code, out = run(capsys, "policy", "check", "--dir", str(policies))
    assert code == 0 and "warning: people_policy.csv:" in out and "role 'inspector'" in out


# --- explain ----------------------------------------------------------------------------------------

SHIPPED_RULES = len(PolicyEngine(SHIPPED_POLICIES).view().rules)
INTERNAL = '{"data_classification": "internal", "tenant_domain": "acme.example"}'


def explain(
    capsys: pytest.CaptureFixture[str], policies: Path, tool: str, args: str, *extra: str
) -> tuple[int, str]:
    base = ["policy", "explain", "--dir", str(policies), "--tenant", "acme", "--agent", "refund_agent"]
    return run(capsys, *base, "--tool", tool, "--args", args, *extra)


def test_explain_allowed_exits_0(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, policies, "issue_refund", '{"amount": 99.99}', "--facts", INTERNAL)
    assert code == 0
    assert "decision  allow" in out
    assert (
        "rule      refund-small: all-tenants, refund_agent, issue_refund, "
        "0 < money(r.args.amount) < 100, allow" in out
    )
    assert "side_effect=irreversible" in out  # from the catalog, as the worker would pass it
    lines = {
        line.split()[1]: line.split()[3]
        for line in out.splitlines()
        if line.startswith("  ") and "LINE" not in line
    }
    assert (
        lines["refund-small"] == "yes"
        and lines["refund-needs-approval"] == "no"
        and len(lines) == SHIPPED_RULES
    )


def test_explain_approval_and_denial_exit_1(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, policies, "issue_refund", '{"amount": "750"}', "--facts", INTERNAL)
    assert code == 1 and "decision  approve" in out and "rule      refund-large-two-approvers:" in out
    assert (
        "approval  2 distinct approver(s) with role approver; after 4h add admin; after 24h auto-reject"
        in out
    )
    code, out = explain(capsys, policies, "issue_refund", '{"amount": 1000.01}', "--facts", INTERNAL)
    assert code == 1 and "decision  deny" in out and "refund-over-limit" in out
    code, out = explain(capsys, policies, "issue_refund", "{}", "--facts", INTERNAL)
    assert code == 1 and "could not be evaluated" in out and "error: r.args has no 'amount'" in out


def test_explain_missing_facts_are_strictest(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, policies, "issue_refund", '{"amount": 5}')
    assert code == 1 and "rule      confidential-irreversible:" in out
    code, out = explain(
        capsys,
        policies,
        "lookup_order",
        '{"order_id": "ORD-1001"}',
        "--facts",
        '{"data_classification": "confidential"}',
    )
    assert code == 0 and "order-lookup" in out  # a read tool (the catalog says so) on a confidential task


def test_explain_json(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explain(capsys, policies, "issue_refund", '{"amount": 150}', "--facts", INTERNAL, "--json")
    body = json.loads(out)
    assert code == 1 and body["decision"] == "approve" and body["rule_id"] == "refund-needs-approval"
    assert body["policy_version"] == PolicyEngine(policies).version
    assert body["approval"]["sla"] == [
        {"after_seconds": 14400, "add_roles": ["admin"], "action": "escalate"},
        {"after_seconds": 86400, "add_roles": [], "action": "auto_reject"},
    ]
    assert [(c["id"], c["matched"]) for c in body["considered"]][2:5] == [
        ("refund-large-two-approvers", False),
        ("refund-needs-approval", True),
        ("refund-small", False),
    ]


@pytest.mark.parametrize(
    "args, facts, message",
    [
        ("{not json", "{}", "--args is not valid JSON"),
        ("[1]", "{}", "--args must be a JSON object"),
        ("{}", '{"colour": "red"}', "--facts: colour: Extra inputs are not permitted"),
    ],
)
def test_explain_bad_usage_exits_2(
    policies: Path, capsys: pytest.CaptureFixture[str], args: str, facts: str, message: str
) -> None:
    code, out = explain(capsys, policies, "issue_refund", args, "--facts", facts)
    assert code == 2 and message in out


def test_explain_broken_policies_exit_2(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (policies / "approvals.yaml").write_text("default: [\n")
    code, out = explain(capsys, policies, "issue_refund", "{}")
    assert code == 2 and "the policies do not load" in out


# --- the API ----------------------------------------------------------------------------------------


@pytest.fixture
async def api(sqlite_db: Any, policies: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=sqlite_db.url,
        state_dir=tmp_path,
        policies_dir=policies,
        catalog_packages=["orchestrator.demo.catalog"],
    )
    app = FastAPI()
    errors.install(app)
    app.include_router(policy_routes.router)
    app.state.frontdesk = build_state(settings, engine=sqlite_db.engine, policy=PolicyEngine(policies))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://frontdesk"
    ) as client:
        yield client


def auth(db: Any, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {db.tokens[who]}"}


async def test_get_policies(api: httpx.AsyncClient, sqlite_db: Any, policies: Path) -> None:
    r = await api.get("/api/policies", headers=auth(sqlite_db, "ada"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == PolicyEngine(policies).version
    rules = {rule["id"]: rule for rule in body["rules"]}
    assert (
        list(rules)[:2] == ["confidential-irreversible", "refund-over-limit"] and len(rules) == SHIPPED_RULES
    )
    assert rules["confidential-irreversible"]["guard"] and rules["confidential-irreversible"]["agent"] == "*"
    assert rules["refund-large-two-approvers"]["approval"]["approvers_required"] == 2
    assert rules["refund-small"]["approval"] is None
    assert rules["email-outside-domain"]["approval"]["rule_id"] == "default"
    assert rules["email-outside-domain"]["condition"] == "domainOf(r.args.to) != r.facts.tenant_domain"
    assert body["default_approval"]["sla"][1] == {
        "after_seconds": 86400,
        "add_roles": [],
        "action": "auto_reject",
    }
    assert (await api.get("/api/policies", headers=auth(sqlite_db, "dev"))).status_code == 200


@pytest.mark.parametrize("who, status", [("riley", 403), ("avery", 403), (None, 401)])
async def test_policies_need_policy_read(
    api: httpx.AsyncClient, sqlite_db: Any, who: str | None, status: int
) -> None:
    r = await api.get("/api/policies", headers=auth(sqlite_db, who) if who else {})
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")


async def test_explain(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    body = {"agent": "refund_agent", "tool": "issue_refund", "args": {"order_id": "ORD-1001", "amount": 600}}
    r = await api.post("/api/policies/explain", json=body, headers=auth(sqlite_db, "dev"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["decision"], got["rule_id"]) == ("approve", "refund-large-two-approvers")
    assert got["rule"].startswith("refund-large-two-approvers: all-tenants, refund_agent, issue_refund")
    assert (
        got["approval"]["approvers_required"] == 2 and "2 distinct approver(s)" in got["approval"]["summary"]
    )
    # side effect from the catalog, domain from the tenant, the rest strictest
    assert got["facts"] == {
        "side_effect": "irreversible",
        "data_classification": "confidential",
        "risk_class": "high",
        "category": "",
        "tenant_domain": "acme.example",
    }
    matched = {c["id"]: c["matched"] for c in got["considered"]}
    assert matched["confidential-irreversible"] and matched["refund-large-two-approvers"]
    assert not matched["refund-over-limit"] and len(matched) == SHIPPED_RULES


async def test_explain_with_facts_and_own_tenant(api: httpx.AsyncClient, sqlite_db: Any) -> None:
    body = {
        "tenant": "acme",
        "agent": "support_agent",
        "tool": "send_email",
        "args": {"to": "Jane@ACME.example", "subject": "s", "body": "b"},
        "facts": {"side_effect": "write", "data_classification": "internal"},
    }
    r = await api.post("/api/policies/explain", json=body, headers=auth(sqlite_db, "ada"))
    assert r.status_code == 200 and (r.json()["decision"], r.json()["rule_id"]) == (
        "allow",
        "email-inside-domain",
    )
    body["args"] = {"to": "jane@globex.example"}
    r = await api.post("/api/policies/explain", json=body, headers=auth(sqlite_db, "ada"))
    assert (r.json()["decision"], r.json()["rule_id"]) == ("approve", "email-outside-domain")
    body["args"] = {"to": "not an address"}
    got = (await api.post("/api/policies/explain", json=body, headers=auth(sqlite_db, "ada"))).json()
    assert (
        got["decision"] == "deny"
        and got["considered"][5]["error"] == "'not an address' is not an e-mail address"
    )


@pytest.mark.parametrize(
    "who, extra, status, detail",
    [
        ("dev", {"tenant": "globex"}, 403, "your own tenant (acme)"),
        ("gina", {"tenant": "acme"}, 403, "your own tenant (globex)"),
        ("riley", {}, 403, "policy:explain"),
        ("ada", {"facts": {"colour": "red"}}, 400, "facts.colour: Extra inputs are not permitted"),
        ("ada", {"agent": ""}, 422, "agent"),
    ],
)
async def test_explain_refusals(
    api: httpx.AsyncClient, sqlite_db: Any, who: str, extra: dict, status: int, detail: str
) -> None:
    body = {"agent": "refund_agent", "tool": "issue_refund", "args": {"amount": 5}, **extra}
    r = await api.post("/api/policies/explain", json=body, headers=auth(sqlite_db, who))
    assert r.status_code == status and detail in r.json()["detail"], r.text


def test_init_copies_the_shipped_policies_to_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ours"
    code, out = run(capsys, "policy", "init", str(target))

    assert code == 0 and f"FRONTDESK_POLICIES_DIR={target.resolve()}" in out
    shipped = sorted(p.name for p in SHIPPED_POLICIES.iterdir() if p.is_file())
    assert sorted(p.name for p in target.iterdir()) == shipped
    assert {"prices.yaml", "budgets.yaml", "tool_policy.csv"} <= set(shipped)
    assert all((target / n).read_bytes() == (SHIPPED_POLICIES / n).read_bytes() for n in shipped)
    assert PolicyEngine(target).version == PolicyEngine(SHIPPED_POLICIES).version

    (target / "tool_policy.csv").write_text("# ours\n")
    code, out = run(capsys, "policy", "init", str(target))  # never overwrites an edited folder unasked
    assert code == 2 and "pass --force to overwrite" in out
    assert (target / "tool_policy.csv").read_text() == "# ours\n"

    code, _ = run(capsys, "policy", "init", str(target), "--force")
    assert code == 0 and (target / "tool_policy.csv").read_bytes() == (SHIPPED_POLICIES / "tool_policy.csv").read_bytes()
