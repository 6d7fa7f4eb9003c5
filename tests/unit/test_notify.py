"""The notifier: outbox de-duplication, signed webhooks, retries with backoff, concurrent dispatchers.

A real SQLite database (migrated once, copied per test); the webhook is an `httpx.MockTransport`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import ensure_tenant
from orchestrator.models import Checkpoint, NotificationOutbox
from orchestrator.services.notify import (
    SIGNATURE_HEADER,
    Dispatcher,
    LogNotifier,
    WebhookNotifier,
    build_notifier,
    enqueue,
    enqueue_checkpoint,
    verify_signature,
)
from orchestrator.settings import Settings

SECRET = "whsec-test"
URL = "https://hooks.example/frontdesk"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notify") / "template.db"
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with session_scope(engine) as session:
        ensure_tenant(session, "acme", "Acme")
    engine.dispose()
    return path


@pytest.fixture
def db_url(template_db: Path, tmp_path: Path) -> str:
    shutil.copy(template_db, tmp_path / "n.db")
    return f"sqlite:///{tmp_path / 'n.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def add(engine: Engine, key: str, **payload: object) -> None:
    with session_scope(engine) as session:
        enqueue(
            session,
            tenant_id="acme",
            kind="checkpoint.opened",
            recipients=["role:approver", "user:usr_1"],
            payload=payload or {"checkpoint_id": key},
            dedupe_key=key,
        )


def rows(engine: Engine) -> list[NotificationOutbox]:
    with Session(engine) as session:
        return list(session.exec(select(NotificationOutbox).order_by(NotificationOutbox.id)).all())  # type: ignore[arg-type]


def as_utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


# --- the outbox ----------------------------------------------------------------------------------


def test_enqueue_is_idempotent_on_the_dedupe_key(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = enqueue(
            session, tenant_id="acme", kind="k", recipients=["role:approver"], payload={}, dedupe_key="a"
        )
    with session_scope(engine) as session:  # a retried activity, in a later transaction
        again = enqueue(
            session, tenant_id="acme", kind="k", recipients=["role:admin"], payload={"x": 1}, dedupe_key="a"
        )
        same_txn = enqueue(
            session, tenant_id="acme", kind="k", recipients=["role:admin"], payload={}, dedupe_key="a"
        )
    assert (first, again, same_txn) == (True, False, False)
    [row] = rows(engine)
    assert (row.recipients, row.payload_json) == ("role:approver", "{}")
    assert (row.status, row.attempts) == ("pending", 0)


def test_enqueue_rides_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        enqueue(session, tenant_id="acme", kind="k", recipients=["role:approver"], payload={}, dedupe_key="b")
        raise RuntimeError("the activity failed after enqueueing")
    assert rows(engine) == []


@pytest.mark.parametrize("recipients", [[], ["approver"], ["role:a,b"], ["group:x"]])
def test_enqueue_refuses_malformed_recipients(engine: Engine, recipients: list[str]) -> None:
    with pytest.raises(ValueError, match="recipients"), session_scope(engine) as session:
        enqueue(session, tenant_id="acme", kind="k", recipients=recipients, payload={}, dedupe_key="c")


def test_checkpoint_notification_payload_and_dedupe(engine: Engine) -> None:
    due = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    cp = Checkpoint(
        id="cp_1",
        tenant_id="acme",
        task_id="tsk_1",
        requester_id="usr_req",
        step="refund",
        tool="issue_refund",
        args_json='{"order_id": "ORD-1", "iban": "DE89 3704"}',
        args_digest="d" * 64,
        policy_version="v" * 64,
        rule="p, acme, refunds, issue_refund, approve",
        assignee_role="approver",
        named_approvers="usr_a,usr_b",
        due_at=due,
        reason="refund between 100 and 1000 EUR",
    )
    with session_scope(engine) as session:
        assert enqueue_checkpoint(session, cp) is True
        assert enqueue_checkpoint(session, cp) is False  # the activity retried
    cp.escalation_level, cp.extra_roles = 1, "admin"
    with session_scope(engine) as session:
        assert enqueue_checkpoint(session, cp, event="escalated") is True
    opened, escalated = rows(engine)
    assert opened.kind == "checkpoint.opened" and opened.dedupe_key == "checkpoint.opened:cp_1:0"
    assert opened.recipients == "role:approver,user:usr_a,user:usr_b"
    assert escalated.recipients == "role:approver,role:admin,user:usr_a,user:usr_b"
    payload = json.loads(opened.payload_json)
    assert payload["link"] == "/api/checkpoints/cp_1"
    assert payload["task_id"] == "tsk_1" and payload["tool"] == "issue_refund"
    assert payload["kind"] == "tool_approval" and payload["assignee_role"] == "approver"
    assert payload["due_at"] == due.isoformat()
    assert "DE89" not in opened.payload_json  # tool arguments stay behind the API


# --- webhook -------------------------------------------------------------------------------------


async def test_webhook_posts_signed_json_and_marks_sent(engine: Engine) -> None:
    add(engine, "k1", checkpoint_id="cp_9", link="/api/checkpoints/cp_9")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    clock = Clock()
    notifier = WebhookNotifier(URL, SECRET, transport=httpx.MockTransport(handler))
    assert await Dispatcher(engine, notifier, clock=clock).dispatch_once() == 1
    [request] = seen
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
    assert verify_signature(SECRET, request.content, request.headers[SIGNATURE_HEADER])
    assert not verify_signature("other-secret", request.content, request.headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, request.content + b" ", request.headers[SIGNATURE_HEADER])
    body = json.loads(request.content)
    [row] = rows(engine)
    assert body["id"] == row.id and request.headers["X-Frontdesk-Delivery"] == str(row.id)
    assert body["tenant"] == "acme" and body["kind"] == "checkpoint.opened"
    assert body["recipients"] == ["role:approver", "user:usr_1"]
    assert body["payload"] == {"checkpoint_id": "cp_9", "link": "/api/checkpoints/cp_9"}
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert as_utc(row.sent_at) == clock.now
    assert await Dispatcher(engine, notifier, clock=clock).dispatch_once() == 0  # never twice


async def test_failed_sends_back_off_then_fail_after_max_attempts(engine: Engine) -> None:
    add(engine, "k2")
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, text="maintenance")

    clock = Clock()
    notifier = WebhookNotifier(URL, SECRET, transport=httpx.MockTransport(handler))
    dispatcher = Dispatcher(engine, notifier, max_attempts=3, backoff_seconds=5, clock=clock)

    assert await dispatcher.dispatch_once() == 0
    [row] = rows(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "HTTP 503: maintenance" in (row.last_error or "")
    assert as_utc(row.sent_at) == clock.now + timedelta(seconds=5)  # not before: the backoff

    clock.advance(4.9)
    await dispatcher.dispatch_once()
    assert len(calls) == 1  # not due yet
    clock.advance(0.1)
    await dispatcher.dispatch_once()
    [row] = rows(engine)
    assert (len(calls), row.status, row.attempts) == (2, "pending", 2)
    assert as_utc(row.sent_at) == clock.now + timedelta(seconds=10)  # doubled

    clock.advance(10)
    await dispatcher.dispatch_once()
    [row] = rows(engine)
    assert (len(calls), row.status, row.attempts, row.sent_at) == (3, "failed", 3, None)
    clock.advance(3600)
    assert await dispatcher.dispatch_once() == 0 and len(calls) == 3


async def test_transport_errors_are_retried_and_a_later_success_is_sent(engine: Engine) -> None:
    add(engine, "k3")
    answers = iter([httpx.ConnectError("refused"), httpx.Response(302), httpx.Response(200)])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    notifier = WebhookNotifier(URL, SECRET, transport=httpx.MockTransport(handler))
    dispatcher = Dispatcher(engine, notifier, backoff_seconds=1, clock=clock)
    assert await dispatcher.dispatch_once() == 0
    assert "ConnectError: refused" in (rows(engine)[0].last_error or "")
    clock.advance(1)
    assert await dispatcher.dispatch_once() == 0  # a redirect is not a delivery
    assert "HTTP 302" in (rows(engine)[0].last_error or "")
    clock.advance(2)
    assert await dispatcher.dispatch_once() == 1
    [row] = rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


async def test_a_dispatcher_that_died_mid_send_is_retried_after_its_lease(engine: Engine) -> None:
    add(engine, "k4")
    clock = Clock()
    sent: list[int] = []

    class Recorder:
        async def send(self, notification: NotificationOutbox) -> None:
            sent.append(notification.id or 0)

    crashed = Dispatcher(engine, Recorder(), lease_seconds=60, clock=clock)
    assert crashed._claim(rows(engine)[0].id or 0, 0) is not None  # claimed, then the process died
    survivor = Dispatcher(engine, Recorder(), lease_seconds=60, clock=clock)
    assert await survivor.dispatch_once() == 0  # leased to the dead one
    clock.advance(61)
    assert await survivor.dispatch_once() == 1
    assert rows(engine)[0].attempts == 2 and len(sent) == 1


async def test_two_dispatchers_never_send_a_notification_twice(db_url: str, engine: Engine) -> None:
    for i in range(60):
        add(engine, f"many-{i}")
    sent: Counter[int] = Counter()

    class Slow:
        async def send(self, notification: NotificationOutbox) -> None:
            sent[notification.id or 0] += 1
            await asyncio.sleep(0.005)

    other_engine = make_engine(db_url)  # as a second process would
    try:
        one = Dispatcher(engine, Slow(), batch=25, concurrency=5)
        two = Dispatcher(other_engine, Slow(), batch=25, concurrency=5)
        delivered = 0
        for _ in range(6):
            a, b = await asyncio.gather(one.dispatch_once(), two.dispatch_once())
            delivered += a + b
    finally:
        other_engine.dispose()
    assert delivered == 60
    assert len(sent) == 60 and set(sent.values()) == {1}
    assert {(r.status, r.attempts) for r in rows(engine)} == {("sent", 1)}


async def test_run_loop_delivers_until_stopped(engine: Engine) -> None:
    add(engine, "k5")
    stop = asyncio.Event()
    dispatcher = Dispatcher(engine, LogNotifier())
    task = asyncio.create_task(dispatcher.run(stop, interval=0.02))
    for _ in range(100):
        if rows(engine)[0].status == "sent":
            break
        await asyncio.sleep(0.02)
    add(engine, "k6")
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert [r.status for r in rows(engine)] == ["sent", "sent"]


# --- log notifier and settings -------------------------------------------------------------------


async def test_log_notifier_logs_kind_and_recipients_never_the_payload(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    add(engine, "k7", api_key="sk-very-secret", customer_email="jane@example.com")
    with caplog.at_level(logging.INFO, logger="orchestrator.services.notify"):
        assert await Dispatcher(engine, LogNotifier()).dispatch_once() == 1
    assert "checkpoint.opened" in caplog.text and "role:approver,user:usr_1" in caplog.text
    assert "sk-very-secret" not in caplog.text and "jane@example.com" not in caplog.text
    assert rows(engine)[0].status == "sent"


def test_build_notifier_from_settings() -> None:
    assert isinstance(build_notifier(Settings(notify_webhook_url="")), LogNotifier)
    hook = build_notifier(Settings(notify_webhook_url=URL, notify_webhook_secret=SECRET))
    assert isinstance(hook, WebhookNotifier) and hook.url == URL
    with pytest.raises(ValueError, match="signing secret"):
        build_notifier(Settings(notify_webhook_url=URL, notify_webhook_secret=""))
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("ftp://x", SECRET)


def test_backoff_doubles_and_is_capped(engine: Engine) -> None:
    d = Dispatcher(engine, LogNotifier(), backoff_seconds=5, max_backoff_seconds=60)
    assert [d.backoff(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
