"""Kill switches on SQLite and PostgreSQL: cross-process visibility within 1 s, precedence, tenant
isolation, the record of every flip, and the API + CLI with their authorization and validation."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from repo_paths import SHIPPED_POLICIES
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.api import errors
from orchestrator.api.routes import switches as switch_routes
from orchestrator.cli import api_client as cli_client
from orchestrator.cli import switch_cmd
from orchestrator.contracts import SWITCHES_CHANGED_SIGNAL
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user
from orchestrator.models import AuditEvent, KillSwitchEvent, NotificationOutbox, Task
from orchestrator.policy.engine import PolicyEngine
from orchestrator.services import notify
from orchestrator.services.switches import SwitchError, SwitchService

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class World:
    db: Any
    a: str  # tenant ids
    b: str
    tokens: dict[str, str]
    user_ids: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def world(db: Any) -> World:
    """Two fresh tenants; in tenant a: an admin, a platform admin, a requester, an approver."""
    a, b = f"swa{secrets.token_hex(4)}", f"swb{secrets.token_hex(4)}"
    tokens, user_ids = {}, {}
    with session_scope(db.engine) as session:
        ensure_tenant(session, a, "switch test A")
        ensure_tenant(session, b, "switch test B")
        for who, roles in [
            ("admin", ["admin"]),
            ("platform", ["admin", "platform_admin"]),
            ("requester", ["requester"]),
            ("approver", ["approver"]),
        ]:
            user = ensure_user(session, a, f"{who}@{a}.example", who.title(), roles)
            tokens[who] = ensure_token(session, user, a)
            user_ids[who] = user.id
    return World(db, a, b, tokens, user_ids)


def wait_for(probe: Any, want: Any, bound: float = 1.0) -> float:
    """Poll `probe()` until `want(result)`; return the seconds it took, failing past `bound`."""
    started = time.monotonic()
    while True:
        if want(probe()):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        assert elapsed < bound, f"not seen within {bound} s"
        time.sleep(0.02)


# --- the service ---------------------------------------------------------------------------------


@BOTH
def test_a_flip_in_another_process_applies_within_one_second(world: World) -> None:
    flipper = SwitchService(world.db.engine)
    other_engine = make_engine(world.db.url)  # another process: its own engine and cache
    try:
        worker = SwitchService(other_engine)
        assert worker.check(tenant_id=world.a, agent="refunds", tool="issue_refund") is None  # cached now
        flipper.flip(
            scope="tool",
            tenant_id=world.a,
            subject="issue_refund",
            active=True,
            mode="stop",
            reason="fraud investigation",
            actor="usr_x",
        )
        took = wait_for(lambda: worker.check(tenant_id=world.a, tool="issue_refund@2"), bool)
        assert took < 1.0
        hit = worker.check(tenant_id=world.a, agent="refunds", tool="issue_refund")
        assert hit is not None
        assert (hit.scope, hit.subject, hit.mode, hit.flipped_by) == ("tool", "issue_refund", "stop", "usr_x")
        assert hit.message.startswith(
            "kill switch (tool issue_refund, stop): fraud investigation — flipped by usr_x at "
        )
        assert hit.flipped_at.tzinfo is not None
        assert worker.check(tenant_id=world.a, tool="send_email") is None

        flipper.flip(scope="tool", tenant_id=world.a, subject="issue_refund", active=False, actor="usr_x")
        wait_for(lambda: worker.check(tenant_id=world.a, tool="issue_refund"), lambda hit: hit is None)
    finally:
        other_engine.dispose()


@BOTH
def test_stop_beats_pause_and_agent_switches_stay_in_their_tenant(world: World) -> None:
    svc = SwitchService(world.db.engine, cache_seconds=0)
    a, b = world.a, world.b
    svc.flip(
        scope="agent", tenant_id=a, subject="refunds", active=True, mode="pause", reason="review", actor="u1"
    )
    assert svc.check(tenant_id=b, agent="refunds") is None  # tenant b's agent of the same name runs
    hit = svc.check(tenant_id=a, agent="refunds@1", tool="lookup_order")
    assert hit is not None and (hit.scope, hit.mode) == ("agent", "pause")

    svc.flip(
        scope="tool", tenant_id=a, subject="issue_refund", active=True, mode="stop", reason="bug", actor="u1"
    )
    hit = svc.check(tenant_id=a, agent="refunds", tool="issue_refund")
    assert hit is not None and (hit.scope, hit.subject, hit.mode) == ("tool", "issue_refund", "stop")

    svc.flip(scope="tenant", tenant_id=a, active=True, mode="pause", reason="audit", actor="u1")
    hit = svc.check(tenant_id=a, agent="refunds", tool="issue_refund")
    assert hit is not None and hit.mode == "stop"  # the tool's stop beats the tenant's pause
    hit = svc.check(tenant_id=a, agent="other")
    assert hit is not None and (hit.scope, hit.subject, hit.mode) == ("tenant", a, "pause")
    assert svc.check(tenant_id=b, agent="refunds", tool="issue_refund") is None

    svc.flip(scope="global", tenant_id="", active=True, mode="pause", reason="provider outage", actor="root")
    try:
        hit = svc.check(tenant_id=b)
        assert hit is not None and (hit.scope, hit.subject, hit.mode) == ("global", "", "pause")
        assert hit.message.startswith("kill switch (global, pause): provider outage")
        hit = svc.check(tenant_id=a, tool="issue_refund")
        assert hit is not None and hit.mode == "stop"
    finally:
        svc.flip(scope="global", tenant_id="", active=False, actor="root")
    assert svc.check(tenant_id=b) is None
    assert {(s.scope, s.subject, s.active) for s in svc.list(b)} >= {("global", "", False)}
    assert {(s.scope, s.subject) for s in svc.list(a, include_global=False)} == {
        ("tenant", ""),
        ("agent", "refunds"),
        ("tool", "issue_refund"),
    }


@BOTH
def test_every_flip_is_recorded(world: World) -> None:
    svc = SwitchService(world.db.engine)
    svc.flip(scope="tool", tenant_id=world.a, subject="send_email", active=True, reason="spam", actor="u1")
    svc.flip(scope="tool", tenant_id=world.a, subject="send_email", active=False, reason="fixed", actor="u2")
    svc.flip(scope="tenant", tenant_id=world.a, active=True, mode="pause", reason="audit", actor="u1")
    svc.flip(scope="global", tenant_id="", active=True, reason="drill", actor="root")
    svc.flip(scope="global", tenant_id="", active=False, actor="root")

    history = svc.history(world.a, limit=50)
    mine = [(e.scope, e.subject, e.active, e.mode, e.flipped_by) for e in history if e.tenant_id == world.a]
    assert mine == [
        ("tenant", "", True, "pause", "u1"),
        ("tool", "send_email", False, "stop", "u2"),
        ("tool", "send_email", True, "stop", "u1"),
    ]
    assert [e.active for e in history if e.scope == "global"][:2] == [False, True]
    assert (
        all(e.tenant_id != world.b for e in svc.history(world.b)) and svc.history(world.a, 2) == history[:2]
    )
    with Session(world.db.engine) as session:
        events = session.exec(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == world.a, AuditEvent.action == "switch.flipped")
            .order_by(col(AuditEvent.seq))
        ).all()
        assert [(e.subject, e.actor, e.reason) for e in events] == [
            ("tool:send_email", "u1", "spam"),
            ("tool:send_email", "u2", "fixed"),
            (f"tenant:{world.a}", "u1", "audit"),
        ]
        assert '"previous": {"active": true, "mode": "stop"}' in events[1].data_json
        assert audit.verify_chain(session, world.a)[0]
        global_audits = session.exec(
            select(AuditEvent).where(AuditEvent.action == "switch.flipped", AuditEvent.reason == "drill")
        ).all()
        assert global_audits == []  # global switches belong to no tenant's chain
        assert session.exec(select(KillSwitchEvent).where(KillSwitchEvent.reason == "drill")).one()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scope": "planet", "tenant_id": "T"}, "scope must be one of"),
        ({"scope": "global", "tenant_id": "T"}, "no tenant and no subject"),
        ({"scope": "global", "tenant_id": "", "subject": "x"}, "no tenant and no subject"),
        ({"scope": "tool", "tenant_id": ""}, "belongs to a tenant"),
        ({"scope": "tool", "tenant_id": "T"}, "needs a subject"),
        ({"scope": "agent", "tenant_id": "T", "subject": "refunds@1"}, "no @version"),
        ({"scope": "tenant", "tenant_id": "T", "subject": "x"}, "has no subject"),
        ({"scope": "tenant", "tenant_id": "T", "reason": "  "}, "give a reason"),
        ({"scope": "tenant", "tenant_id": "T", "mode": "halt"}, "pause or stop"),
        ({"scope": "tenant", "tenant_id": "nosuchtenant"}, "does not exist"),
    ],
)
def test_invalid_flips_are_refused(world: World, kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"reason": "why", **kwargs}
    if kwargs["tenant_id"] == "T":
        kwargs["tenant_id"] = world.a
    with pytest.raises(SwitchError, match=message):
        SwitchService(world.db.engine).flip(active=True, actor="u1", **kwargs)


def test_checks_are_served_from_memory_between_reads(world: World) -> None:
    svc = SwitchService(world.db.engine, cache_seconds=0.5)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(world.db.engine, "before_cursor_execute", count)
    try:
        for _ in range(200):
            svc.check(tenant_id=world.a, agent="refunds", tool="issue_refund")
    finally:
        event.remove(world.db.engine, "before_cursor_execute", count)
    assert 1 <= len(statements) <= 2  # one read of the active set per 0.5 s
    with pytest.raises(ValueError, match="within 1 s"):
        SwitchService(world.db.engine, cache_seconds=1.5)


# --- the API -------------------------------------------------------------------------------------


def make_app(world: World, **extra: Any) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(switch_routes.router)
    app.state.frontdesk = SimpleNamespace(
        engine=world.db.engine,
        policy=PolicyEngine(SHIPPED_POLICIES),
        switches=SwitchService(world.db.engine),
        **extra,
    )
    return app


@pytest.fixture
async def api(world: World) -> Any:
    transport = httpx.ASGITransport(app=make_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk") as client:
        yield client


@BOTH
async def test_api_admin_flips_and_lists_tenant_switches(world: World, api: httpx.AsyncClient) -> None:
    body = {"scope": "tool", "subject": "issue_refund", "active": True, "mode": "pause", "reason": "review"}
    r = await api.post("/api/switches", json=body, headers=world.auth("admin"))
    assert r.status_code == 200, r.text
    flipped = r.json()
    assert (flipped["tenant_id"], flipped["active"], flipped["mode"]) == (world.a, True, "pause")
    assert flipped["flipped_by"] == world.user_ids["admin"] and flipped["flipped_at"].endswith("Z")
    assert world.db.engine  # the switch is in the caller's tenant, nowhere else
    assert SwitchService(world.db.engine).check(tenant_id=world.b, tool="issue_refund") is None

    r = await api.get("/api/switches", headers=world.auth("admin"))
    assert r.status_code == 200
    assert [(s["scope"], s["subject"], s["active"]) for s in r.json()["items"] if s["scope"] != "global"] == [
        ("tool", "issue_refund", True)
    ]
    r = await api.post(
        "/api/switches",
        json={"scope": "tool", "subject": "issue_refund", "active": False},
        headers=world.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["mode"] == "pause"
    r = await api.get("/api/switches/history", params={"limit": 5}, headers=world.auth("admin"))
    assert [(e["subject"], e["active"]) for e in r.json()["items"] if e["tenant_id"] == world.a] == [
        ("issue_refund", False),
        ("issue_refund", True),
    ]


@BOTH
async def test_api_refuses_non_admins_and_global_without_platform_admin(
    world: World, api: httpx.AsyncClient
) -> None:
    tenant_on = {"scope": "tenant", "active": True, "reason": "x"}
    global_on = {"scope": "global", "active": True, "mode": "stop", "reason": "outage"}
    for who in ("requester", "approver"):
        for method, path, body in [
            ("GET", "/api/switches", None),
            ("GET", "/api/switches/history", None),
            ("POST", "/api/switches", tenant_on),
            ("POST", "/api/switches", {"scope": "nonsense"}),  # refused before the body is judged
        ]:
            r = await api.request(method, path, json=body, headers=world.auth(who))
            assert r.status_code == 403, (who, method, path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.post("/api/switches", json=global_on, headers=world.auth("admin"))
    assert r.status_code == 403 and "switch:flip_global" in r.json()["detail"]
    assert (await api.get("/api/switches")).status_code == 401

    r = await api.post("/api/switches", json=global_on, headers=world.auth("platform"))
    try:
        assert r.status_code == 200, r.text
        assert (r.json()["scope"], r.json()["tenant_id"], r.json()["active"]) == ("global", "", True)
        r = await api.get("/api/switches", headers=world.auth("platform"))
        assert ("global", True) in [(s["scope"], s["active"]) for s in r.json()["items"]]
    finally:
        r = await api.post(
            "/api/switches", json={"scope": "global", "active": False}, headers=world.auth("platform")
        )
        assert r.status_code == 200 and r.json()["active"] is False


class FakeTemporal:
    """Records the signals the API sends; `task-<id>` of a finished task refuses, as Temporal would."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str]] = []

    async def connect(self) -> FakeTemporal:
        return self

    def get_workflow_handle(self, workflow_id: str) -> Any:
        async def signal(name: str) -> None:
            if workflow_id.endswith("gone"):
                raise RuntimeError("workflow execution already completed")
            self.signals.append((workflow_id, name))

        return SimpleNamespace(signal=signal)


async def test_api_wakes_the_waiting_tasks_in_the_switchs_reach(world: World) -> None:
    ids = {}
    with session_scope(world.db.engine) as session:
        for name, tenant, status in [
            ("a_wait", world.a, "waiting"),
            ("a_run", world.a, "running"),
            ("b_wait", world.b, "waiting"),
            ("a_gone", world.a, "waiting"),
        ]:
            task = Task(
                id=f"tsk_{secrets.token_hex(6)}{'gone' if name == 'a_gone' else ''}",
                tenant_id=tenant,
                requester_id=world.user_ids["requester"],
                workflow_name="refund_request",
                workflow_version="1",
                input_text="x",
                definition_json="{}",
                status=status,
            )
            session.add(task)
            ids[name] = f"task-{task.id}"
    temporal = FakeTemporal()
    app = make_app(world, temporal_client=temporal.connect)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fd") as api:
        pause = {"scope": "agent", "subject": "refunds", "active": True, "mode": "pause", "reason": "r"}
        assert (await api.post("/api/switches", json=pause, headers=world.auth("admin"))).status_code == 200
        assert temporal.signals == [(ids["a_wait"], SWITCHES_CHANGED_SIGNAL)]  # not b's, not running ones
        temporal.signals.clear()
        off = {"scope": "global", "active": False}
        assert (await api.post("/api/switches", json=off, headers=world.auth("platform"))).status_code == 200
        assert {ids["a_wait"], ids["b_wait"]} <= {wf for wf, _ in temporal.signals}
        assert ids["a_gone"] not in {wf for wf, _ in temporal.signals}
    assert await switch_routes.wake_waiting_tasks(SimpleNamespace(engine=world.db.engine), None) == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"scope": "agent", "active": True, "reason": "x"}, "needs a subject"),
        ({"scope": "tool", "subject": "issue_refund", "active": True}, "give a reason"),
        ({"scope": "tenant", "subject": "acme", "active": True, "reason": "x"}, "has no subject"),
        ({"scope": "tool", "subject": "a b", "active": True, "reason": "x"}, "is invalid"),
        ({"scope": "galaxy", "active": True, "reason": "x"}, "scope"),
        ({"scope": "tenant", "active": True, "reason": "x", "mode": "halt"}, "mode"),
        ({"scope": "tenant", "reason": "x"}, "active"),
        ({"scope": "tenant", "active": True, "reason": "x", "tenant_id": "other"}, "tenant_id"),
    ],
)
async def test_api_answers_422_with_a_clear_message(
    world: World, api: httpx.AsyncClient, body: dict[str, Any], detail: str
) -> None:
    r = await api.post("/api/switches", json=body, headers=world.auth("admin"))
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]


# --- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
async def cli(world: World, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`await cli(who, *argv)` runs `frontdesk switch …` (sync, in a thread) against the app on this
    loop; returns (exit code, stdout, stderr)."""
    loop = asyncio.get_running_loop()

    def forward(request: httpx.Request) -> httpx.Response:
        call = api.request(
            request.method, request.url.raw_path.decode(), headers=request.headers, content=request.content
        )
        answer = asyncio.run_coroutine_threadsafe(call, loop).result(timeout=30)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    monkeypatch.setattr(
        cli_client,
        "build_client",
        lambda url, token: cli_client.ApiClient(url, token, transport=httpx.MockTransport(forward)),
    )
    parser = argparse.ArgumentParser(prog="frontdesk")
    switch_cmd.register(parser.add_subparsers(dest="command", required=True))

    async def run(who: str, *argv: str) -> tuple[int, str, str]:
        args = parser.parse_args([*argv, "--url", "http://frontdesk", "--token", world.tokens[who]])
        out, err = io.StringIO(), io.StringIO()

        def call() -> int:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return int(args.func(args))

        code = await asyncio.to_thread(call)
        return code, out.getvalue(), err.getvalue()

    return run


async def test_cli_switch_on_list_off(cli: Any) -> None:
    code, out, _ = await cli(
        "admin", "switch", "on", "tool", "issue_refund", "--mode", "pause", "--reason", "audit"
    )
    assert code == 0 and out.strip() == "kill switch tool issue_refund is ON (pause): audit"
    code, out, _ = await cli("admin", "switch", "list")
    assert code == 0 and "issue_refund" in out and " on " in out and "pause" in out
    code, out, _ = await cli("admin", "switch", "off", "tool", "issue_refund")
    assert code == 0 and out.strip() == "kill switch tool issue_refund is off"
    code, out, _ = await cli("admin", "switch", "history", "--json")
    assert code == 0 and '"issue_refund"' in out
    code, _, err = await cli("admin", "switch", "on", "agent", "--reason", "x")
    assert code == 2 and "needs the agent name" in err
    code, _, err = await cli("admin", "switch", "on", "global", "--reason", "x")
    assert code == 1 and "switch:flip_global" in err
    code, _, err = await cli("requester", "switch", "list")
    assert code == 1 and err.startswith("error: Forbidden")


# --- the notification outbox on both databases (it shares insert_missing with the switches) ------


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Engine]:
    """An empty database of its own, so its dispatchers see no other test's notifications."""
    if request.param == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'outbox.db'}", ""
    else:
        name = f"frontdesk_outbox_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        ensure_tenant(session, "acme", "Acme")
    yield engine
    engine.dispose()
    if name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_outbox_dedupes_and_two_dispatchers_send_once(fresh_engine: Engine) -> None:
    for attempt in range(2):  # the enqueueing activity ran twice
        with session_scope(fresh_engine) as session:
            new = [
                notify.enqueue(
                    session,
                    tenant_id="acme",
                    kind="checkpoint.opened",
                    recipients=["role:approver"],
                    payload={"n": i},
                    dedupe_key=f"cp-{i}",
                )
                for i in range(30)
            ]
        assert new == [attempt == 0] * 30
    sent: Counter[int] = Counter()

    class Recorder:
        async def send(self, notification: NotificationOutbox) -> None:
            sent[notification.id or 0] += 1
            await asyncio.sleep(0.005)

    one = notify.Dispatcher(fresh_engine, Recorder(), batch=20, concurrency=5)
    two = notify.Dispatcher(fresh_engine, Recorder(), batch=20, concurrency=5)
    delivered = 0
    for _ in range(4):
        delivered += sum(await asyncio.gather(one.dispatch_once(), two.dispatch_once()))
    assert delivered == 30 and len(sent) == 30 and set(sent.values()) == {1}
