"""Interrupted model calls are reconcilable: `frontdesk model-calls list|reconcile` and the admin
API set the real figures; the task's cost, the tenant's spend (budget counters) and the call's
settled reservation move by the same difference, once; the audit trail names the operator; the
task page shows an interrupted call as estimated and a reconciled one as reconciled.

The interrupted rows are made the way a dead worker leaves them: the ledger writes the request
before it is sent, the retried activity marks it interrupted, the call is settled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from repo_paths import SHIPPED_POLICIES
from reserved_calls import RESERVED, reserved_call
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from webui.conftest import sign_in

from orchestrator import audit
from orchestrator.app import build_state, create_app
from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import current_month
from orchestrator.cli.main import main
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user, seed_demo
from orchestrator.models import AuditEvent, BudgetCounter, BudgetReservation, ModelCall
from orchestrator.services.tasks import cost_of
from orchestrator.settings import Settings, get_settings
from workers.activities.model_ledger import ModelCallLedger, interrupt

PRICES = PriceTable.load(SHIPPED_POLICIES / "prices.yaml")


@dataclass
class World:
    engine: Engine
    settings: Settings
    tokens: dict[str, str]
    passwords: dict[str, str]
    capsys: pytest.CaptureFixture[str]

    def cli(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    def api(self) -> httpx.AsyncClient:
        app = create_app(self.settings, state=build_state(self.settings, engine=self.engine))
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk")

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'frontdesk.db'}"
    migrate(url)
    engine = make_engine(url)
    info = seed_demo(engine, tmp_path)
    tokens = {email.split("@")[0]: token for email, token in info.tokens}
    with session_scope(engine) as session:
        ensure_tenant(session, "globex", "Globex (test)")
        gina = ensure_user(session, "globex", "gina@globex.example", "Gina", ["requester", "approver", "admin"])
        tokens["gina"] = ensure_token(session, gina, "globex")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", url)
    monkeypatch.setenv("FRONTDESK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr("getpass.getuser", lambda: "opsperson")
    get_settings.cache_clear()
    settings = Settings(_env_file=None, database_url=url, state_dir=tmp_path / "state")
    passwords = {email.split("@")[0]: password for email, password, _ in info.logins}
    yield World(engine, settings, tokens, passwords, capsys)
    engine.dispose()
    get_settings.cache_clear()


def interrupted_call(engine: Engine, task_id: str | None = None) -> tuple[str, str]:
    """(task id, model call id) of a call whose only request was interrupted, then settled."""
    call, budgets = reserved_call(engine, task_id=task_id, task_status="completed")
    task_id, request_id = call.facts.task_id, call.request_id
    ledger = ModelCallLedger.open(engine, PRICES, call, activity_attempt=1)
    ledger._sending(1)  # the request left; the worker died before its answer was written down
    budgets.settle(request_id, interrupt(engine, request_id))  # what the retried activity does
    with session_scope(engine) as session:
        row = session.exec(select(ModelCall).where(ModelCall.request_id == request_id)).one()
        assert (row.status, row.cost_usd, row.cost_estimated) == ("interrupted", RESERVED, True)
        return task_id, row.id


def tenant_spend(engine: Engine) -> Decimal:
    with Session(engine) as session:
        counter = session.exec(
            select(BudgetCounter).where(
                BudgetCounter.tenant_id == "acme",
                BudgetCounter.scope == "tenant_month",
                BudgetCounter.period == current_month(),
            )
        ).one()
        return Decimal(counter.spent_usd)


def task_cost(engine: Engine, task_id: str) -> tuple[Decimal, bool]:
    with Session(engine) as session:
        summary = cost_of(session, [task_id])[task_id]
        return summary.total_usd, summary.estimated


def test_cli_lists_and_reconciles_an_interrupted_call(world: World) -> None:
    task_id, call_id = interrupted_call(world.engine)
    spend_before = tenant_spend(world.engine)
    assert task_cost(world.engine, task_id) == (RESERVED, True)

    code, out, _ = world.cli("model-calls", "list", "--tenant", "acme", "--status", "interrupted")
    assert code == 0 and call_id in out and "(estimated)" in out

    code, out, err = world.cli(
        "model-calls", "reconcile", call_id, "--cost", "0.0031", "--tokens-in", "120", "--tokens-out", "30",
        "--note", "litellm spend log 2026-12-03",
    )  # fmt: skip
    assert code == 0, err
    assert "0.0125 USD (estimated) -> 0.0031 USD" in out

    real, difference = Decimal("0.0031"), Decimal("0.0031") - RESERVED
    assert task_cost(world.engine, task_id) == (real, False)
    assert tenant_spend(world.engine) == spend_before + difference
    with Session(world.engine) as session:
        row = session.get_one(ModelCall, call_id)
        reservation = session.exec(select(BudgetReservation).where(BudgetReservation.id == row.request_id)).one()
        task_counter = session.exec(
            select(BudgetCounter).where(BudgetCounter.scope == "task", BudgetCounter.period == task_id)
        ).one()
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "model_call.reconciled").order_by(col(AuditEvent.seq))
        ).all()
        chain_ok, why = audit.verify_chain(session, "acme")
    assert (row.status, row.cost_usd, row.prompt_tokens, row.completion_tokens) == ("reconciled", real, 120, 30)
    assert Decimal(reservation.settled_usd or 0) == real
    assert Decimal(task_counter.spent_usd) == real
    [event] = events
    assert (event.actor, event.subject, event.task_id) == ("cli:opsperson", call_id, task_id)
    assert Decimal(json.loads(event.data_json)["difference_usd"]) == difference
    assert chain_ok, why

    # Once: a second reconcile is refused and changes nothing.
    code, _, err = world.cli("model-calls", "reconcile", call_id, "--cost", "0.5")
    assert code == 2 and "only interrupted calls" in err
    assert task_cost(world.engine, task_id) == (real, False)
    assert tenant_spend(world.engine) == spend_before + difference

    # --actor names someone else; --not-billed zeroes a request that never reached a provider.
    _, other = interrupted_call(world.engine, task_id)
    code, out, err = world.cli("model-calls", "reconcile", other, "--not-billed", "--actor", "ops:lee")
    assert code == 0, err
    assert task_cost(world.engine, task_id) == (real, False)
    assert tenant_spend(world.engine) == spend_before + difference
    code, _, err = world.cli("model-calls", "reconcile", "mc_nope", "--cost", "0.1")
    assert code == 2 and "No model call" in err


async def test_admin_api_reconciles_within_the_tenant_only(world: World) -> None:
    task_id, call_id = interrupted_call(world.engine)
    spend_before = tenant_spend(world.engine)
    path = f"/api/model-calls/{call_id}/reconcile"
    async with world.api() as api:
        listed = await api.get("/api/model-calls?status=interrupted", headers=world.auth("ada"))
        assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [call_id]
        refused = await api.post(path, json={"cost_usd": "0.001"}, headers=world.auth("avery"))
        assert refused.status_code == 403, refused.text
        elsewhere = await api.post(path, json={"cost_usd": "0.001"}, headers=world.auth("gina"))
        assert elsewhere.status_code == 404, elsewhere.text
        no_cost = await api.post(path, json={}, headers=world.auth("ada"))
        assert no_cost.status_code == 422, no_cost.text
        done = await api.post(path, json={"not_billed": True, "note": "router log: refused"}, headers=world.auth("ada"))
        assert done.status_code == 200, done.text
        assert done.json()["call"]["status"] == "reconciled" and done.json()["difference_usd"] == str(-RESERVED)
        again = await api.post(path, json={"not_billed": True}, headers=world.auth("ada"))
        assert again.status_code == 409, again.text
        task = await api.get(f"/api/tasks/{task_id}", headers=world.auth("ada"))
    assert task.json()["cost"]["total_usd"] == "0"
    assert tenant_spend(world.engine) == spend_before - RESERVED
    with Session(world.engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "model_call.reconciled")).all()
    assert event.actor.startswith("user:")


async def test_the_task_page_shows_estimated_then_reconciled(world: World) -> None:
    task_id, call_id = interrupted_call(world.engine)
    app = create_app(world.settings, state=build_state(world.settings, engine=world.engine))

    @dataclass
    class Db:
        passwords: dict[str, str]

    ada = await sign_in(app, Db(world.passwords), "ada")  # type: ignore[arg-type]
    try:
        page = await ada.get(f"/tasks/{task_id}")
        assert page.status_code == 200
        assert ">interrupted</span>" in page.text and ">estimated</span>" in page.text
        code, _, err = world.cli("model-calls", "reconcile", call_id, "--cost", "0.002")
        assert code == 0, err
        page = await ada.get(f"/tasks/{task_id}")
        assert ">reconciled</span>" in page.text and ">estimated</span>" not in page.text
    finally:
        await ada.client.aclose()
