"""Notification dispatchers in several worker processes on PostgreSQL (production's database): the
conditional-UPDATE claim lets exactly one of them send each notification. (tests/unit/test_notify.py
covers SQLite, the lease and the retries.) A database of its own, so no other test's outbox is sent.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from conftest import PG_ADMIN_URL
from sqlmodel import Session, select

from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import ensure_tenant
from orchestrator.models import NotificationOutbox
from orchestrator.services.notify import Dispatcher, enqueue

COUNT = 120


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"frontdesk_notify_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    migrate(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_three_dispatchers_send_each_notification_once(pg_url: str) -> None:
    engines = [make_engine(pg_url) for _ in range(3)]  # one per process
    try:
        with session_scope(engines[0]) as session:
            ensure_tenant(session, "acme", "Acme")
            for i in range(COUNT):
                enqueue(
                    session,
                    tenant_id="acme",
                    kind="checkpoint.opened",
                    recipients=["role:approver"],
                    payload={"n": i},
                    dedupe_key=f"n-{i}",
                )
        sent: Counter[int] = Counter()

        class Recorder:
            async def send(self, notification: NotificationOutbox) -> None:
                sent[notification.id or 0] += 1
                await asyncio.sleep(0.002)

        # Each sees the same due rows each round, so they race for every claim.
        dispatchers = [Dispatcher(engine, Recorder(), batch=30, concurrency=6) for engine in engines]
        for _ in range(10):
            await asyncio.gather(*(d.dispatch_once() for d in dispatchers))
            if len(sent) == COUNT:
                break
        assert len(sent) == COUNT and set(sent.values()) == {1}  # every one, none twice
        with Session(engines[0]) as session:
            rows = session.exec(select(NotificationOutbox)).all()
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    finally:
        for engine in engines:
            engine.dispose()
