"""/api/budgets and `frontdesk budget …` against a real database (SQLite and PostgreSQL).

A minimal app (the budgets router alone) on the seeded database; each test gets its own tenant with
an admin, a requester and an approver, so the limits set here touch no other test's tenant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from repo_paths import SHIPPED_POLICIES

from orchestrator.api import errors
from orchestrator.api.routes import budgets as budget_routes
from orchestrator.budgets.service import BudgetService, Reservation, current_month, load_service
from orchestrator.cli import api_client as client
from orchestrator.cli import budget_cmd
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user
from orchestrator.models import Task
from orchestrator.policy.engine import PolicyEngine
from orchestrator.settings import Settings

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
POLICIES = SHIPPED_POLICIES


@dataclass
class Api:
    http: httpx.Client
    tenant: str
    tokens: dict[str, str]
    user_ids: dict[str, str]
    budgets: BudgetService
    engine: Any
    transport: SyncAsgi

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str = "boss", **params: str) -> httpx.Response:
        return self.http.get("/api/budgets", params=params, headers=self.auth(who))

    def put(self, scope: str, body: dict[str, Any], who: str = "boss") -> httpx.Response:
        return self.http.put(f"/api/budgets/{scope}", json=body, headers=self.auth(who))


class SyncAsgi(httpx.BaseTransport):
    """A sync httpx transport into an ASGI app (the CLI is sync; starlette's TestClient is deprecated)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            response = await self.asgi.handle_async_request(request)
            return httpx.Response(
                response.status_code, headers=response.headers, content=await response.aread()
            )

        return asyncio.run(call())


def client_for(app: FastAPI, transport: SyncAsgi | None = None) -> httpx.Client:
    return httpx.Client(transport=transport or SyncAsgi(app), base_url="http://testserver")


def build_app(engine: Any, budgets: BudgetService | None) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(budget_routes.router)
    state = SimpleNamespace(engine=engine, policy=PolicyEngine(POLICIES))
    if budgets is not None:
        state.budgets = budgets
    app.state.frontdesk = state
    return app


@pytest.fixture
def api(db: Any) -> Iterator[Api]:
    tenant = f"bapi{secrets.token_hex(4)}"
    tokens, user_ids = {"ada": db.tokens["ada"]}, {}
    with session_scope(db.engine) as session:
        ensure_tenant(session, tenant, "budget API test")
        for name, roles in [("boss", ["admin"]), ("rita", ["requester"]), ("abe", ["approver"])]:
            user = ensure_user(session, tenant, f"{name}@{tenant}.example", name.title(), roles)
            tokens[name] = ensure_token(session, user, tenant)
            session.flush()
            user_ids[name] = user.id
    budgets = load_service(db.engine, POLICIES)
    transport = SyncAsgi(build_app(db.engine, budgets))
    with client_for(transport.app, transport) as http:
        yield Api(http, tenant, tokens, user_ids, budgets, db.engine, transport)


def spend(api: Api, amount: D = D("0.004")) -> str:
    with session_scope(api.engine) as session:
        task = Task(
            tenant_id=api.tenant,
            requester_id=api.user_ids["rita"],
            workflow_name="budget_api_test",
            workflow_version="1",
            input_text="-",
            definition_json="{}",
        )
        session.add(task)
    outcome = api.budgets.reserve(
        reservation_id=f"{task.id}:1", tenant_id=api.tenant, task_id=task.id, step="answer",
        agent="refund_agent@1", step_limit_usd=D("0.01"), amount=amount, month=current_month(),
    )  # fmt: skip
    assert isinstance(outcome, Reservation)
    return task.id


# --- GET --------------------------------------------------------------------------------------------


@BOTH
def test_admin_lists_the_months_budgets_with_spend(api: Api) -> None:
    task_id = spend(api)
    r = api.get(month=current_month())
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["tenant_id"], report["month"]) == (api.tenant, current_month())
    budgets = {b["scope"]: b for b in report["budgets"]}
    assert budgets["tenant_month"] | {"counter_id": None} == {
        "scope": "tenant_month", "subject": "", "period": current_month(), "task_id": None,
        "limit_usd": "100.00", "spent_usd": "0.00", "reserved_usd": "0.004", "remaining_usd": "99.996",
        "on_breach": "stop", "counter_id": None, "source": "file",
    }  # fmt: skip
    assert budgets["task_max"]["limit_usd"] == "5.00"
    tasks = {(t["scope"], t["period"]): t for t in report["tasks"]}
    assert tasks[("task", task_id)]["limit_usd"] == "0.50"
    assert tasks[("step", f"{task_id}/answer")]["reserved_usd"] == "0.004"
    assert api.get().json()["month"] == current_month()  # the month defaults to this one
    assert api.get(month="2001-01").json()["tasks"] == []


@BOTH
def test_only_admins_of_the_tenant_see_its_budgets(api: Api) -> None:
    spend(api)
    for who in ("rita", "abe"):
        r = api.get(who)
        assert r.status_code == 403, r.text
        assert "do not allow budget:read" in r.json()["detail"]
    assert api.http.get("/api/budgets").status_code == 401
    other = api.get("ada").json()  # acme's admin sees acme's budgets, never this tenant's
    assert other["tenant_id"] == "acme"
    assert all(api.tenant not in json.dumps(line) for line in other["tasks"])


@BOTH
def test_bad_month_is_422(api: Api) -> None:
    r = api.get(month="2026-13")
    assert r.status_code == 422
    assert r.json()["detail"] == "month must look like 2026-11, got '2026-13'"


def test_503_without_a_budget_service(db: Any) -> None:
    with client_for(build_app(db.engine, None)) as http:
        r = http.get("/api/budgets", headers={"Authorization": f"Bearer {db.tokens['ada']}"})
    assert r.status_code == 503 and "not configured" in r.json()["detail"]


# --- PUT --------------------------------------------------------------------------------------------


@BOTH
def test_admin_sets_tenant_agent_tool_and_task_max_limits(api: Api) -> None:
    r = api.put("tenant_month", {"limit_usd": "250.00", "on_breach": "pause"})
    assert r.status_code == 200, r.text
    assert r.json() | {"remaining_usd": None} == {
        "scope": "tenant_month", "subject": "", "period": current_month(), "task_id": None,
        "limit_usd": "250.00", "spent_usd": "0.00", "reserved_usd": "0.00", "remaining_usd": None,
        "on_breach": "pause", "counter_id": None, "source": "admin",
    }  # fmt: skip
    r = api.put("agent_month", {"subject": "refund_agent", "limit_usd": 20})
    assert (r.status_code, r.json()["on_breach"], r.json()["limit_usd"]) == (200, "stop", "20.00")
    assert api.put("tool_month", {"subject": "send_email", "limit_usd": "5"}).status_code == 200
    assert api.put("task_max", {"limit_usd": "2.5"}).json()["limit_usd"] == "2.50"
    assert api.budgets.max_task_budget(api.tenant) == D("2.5")
    listed = {(b["scope"], b["subject"]): b for b in api.get().json()["budgets"]}
    assert {k: v["limit_usd"] for k, v in listed.items()} == {
        ("tenant_month", ""): "250.00",
        ("agent_month", "refund_agent"): "20.00",
        ("tool_month", "send_email"): "5.00",
        ("task_max", ""): "2.50",
    }
    assert all(v["source"] == "admin" for v in listed.values())


@BOTH
def test_non_admins_may_not_set_limits(api: Api) -> None:
    for who in ("rita", "abe"):
        r = api.put("tenant_month", {"limit_usd": "1000000"}, who)
        assert r.status_code == 403 and "budget:write" in r.json()["detail"]
    assert api.get().json()["budgets"][0]["limit_usd"] == "100.00"


@BOTH
@pytest.mark.parametrize(
    ("scope", "body", "detail"),
    [
        ("planet", {"limit_usd": "1"},
         "scope: Input should be 'tenant_month', 'agent_month', 'tool_month' or 'task_max'"),
        ("tenant_month", {"limit_usd": "lots"}, "limit_usd: Input should be a valid decimal"),
        ("tenant_month", {"limit_usd": "-1"}, "limit_usd: Input should be greater than or equal to 0"),
        ("tenant_month", {"limit_usd": "0.0000000001"},
         "limit_usd: Decimal input should have no more than 9 decimal places"),
        ("tenant_month", {"limit_usd": "1e12"}, "limit_usd: Input should be less than or equal to 999999999"),
        ("tenant_month", {}, "limit_usd: Field required"),
        ("tenant_month", {"limit_usd": "1", "on_breach": "halt"},
         "on_breach: Input should be 'pause' or 'stop'"),
        ("tenant_month", {"limit": "1"}, "limit: Extra inputs are not permitted"),
        ("tenant_month", {"limit_usd": "1", "subject": "x"},
         "tenant_month applies to the whole tenant: leave the subject empty"),
        ("agent_month", {"limit_usd": "1"}, "agent_month needs a subject: the agent name, e.g. refund_agent"),
        ("tool_month", {"limit_usd": "1", "subject": "no spaces"},
         "tool_month needs a subject: the tool name"),
    ],
)  # fmt: skip
def test_bad_input_is_422_with_a_clear_message(api: Api, scope: str, body: dict, detail: str) -> None:
    r = api.put(scope, body)
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]


# --- the CLI, end to end through the API ------------------------------------------------------------


@pytest.fixture
def cli(api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any) -> Any:
    settings = Settings(_env_file=None, environment="development", state_dir=tmp_path)
    monkeypatch.setattr(client, "get_settings", lambda: settings)
    monkeypatch.setattr(
        client,
        "build_client",
        lambda url, token: client.ApiClient(url, token, transport=api.transport),
    )

    def run(*argv: str, who: str = "boss") -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="frontdesk")
        budget_cmd.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args([*argv, "--url", "http://testserver", "--token", api.tokens[who]])
        code = args.func(args)
        out = capsys.readouterr()
        assert api.tokens[who] not in out.out + out.err
        return code, out.out, out.err

    return run


def test_cli_budget_list_and_set(api: Api, cli: Any) -> None:
    task_id = spend(api)
    code, out, _ = cli(
        "budget", "set", "agent_month", "20", "--subject", "refund_agent", "--on-breach", "pause"
    )
    assert (code, out.strip()) == (0, "agent_month of refund_agent: limit $20.00, on breach pause")
    code, out, _ = cli("budget", "list")
    assert code == 0
    assert f"Budgets of {api.tenant} for {current_month()}" in out
    assert "tenant_month" in out and "$100.00" in out and "$0.004" in out and "unlimited" not in out
    assert "refund_agent" in out and "$20.00" in out and task_id in out
    code, out, _ = cli("budget", "list", "--month", "2001-01", "--json")
    assert code == 0 and json.loads(out)["tasks"] == []


def test_cli_budget_errors(cli: Any) -> None:
    code, _, err = cli("budget", "set", "tenant_month", "lots")
    assert code == 2 and "LIMIT must be a USD amount" in err
    code, _, err = cli("budget", "set", "tenant_month", "10", who="rita")
    assert code == 1 and err.startswith("error: Forbidden: ") and "budget:write" in err
    code, _, err = cli("budget", "set", "agent_month", "10")
    assert code == 1 and "agent_month needs a subject" in err
    code, _, err = cli("budget", "list", "--month", "November")
    assert code == 1 and "month must look like 2026-11" in err
