"""The login throttle counts failed sign-ins in the database: two API instances (each with its own
engine, as two processes would have) on one SQLite or PostgreSQL database share the count.

5 failures per (client address, e-mail) per 15 minutes; a success clears the key; rows older than
the window are pruned and do not count. Each test signs in from its own client address, so no
test's failures touch another's.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SeededDb, stack_settings
from sqlmodel import select

from orchestrator.app import build_state, create_app
from orchestrator.db import make_engine, session_scope
from orchestrator.models import LoginFailure, utcnow

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def two_apps(db: SeededDb, tmp_path: Path) -> AsyncIterator[list[Any]]:
    """Two API instances on the same database, each with its own engine."""
    settings = stack_settings(db, "http://127.0.0.1:9", tmp_path)
    engines = [make_engine(db.url), make_engine(db.url)]
    yield [create_app(settings, state=build_state(settings, engine=e)) for e in engines]
    for e in engines:
        e.dispose()


def new_address() -> str:
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"  # documentation range, unique per test


async def attempt(app: Any, address: str, email: str, password: str) -> int:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://frontdesk") as c:
        form = await c.get("/login")
        found = CSRF.search(form.text)
        assert found, form.text[:300]
        r = await c.post("/login", data={"email": email, "password": password, "csrf_token": found.group(1)})
    return r.status_code


def key_hash(address: str, email: str) -> str:
    return hashlib.sha256(f"{address}|{email}".encode()).hexdigest()


def rows(db: SeededDb, digest: str) -> list[LoginFailure]:
    with session_scope(db.engine) as s:
        return list(s.exec(select(LoginFailure).where(LoginFailure.key_hash == digest)))


@BOTH
async def test_two_instances_share_the_count(db: SeededDb, two_apps: list[Any]) -> None:
    a, b = two_apps
    address, email = new_address(), "riley@acme.example"
    statuses = [await attempt(app, address, email, "wrong") for app in (a, b, a, b, a)]
    assert statuses == [401] * 5
    assert await attempt(b, address, email, "wrong") == 429
    assert await attempt(a, address, email, db.passwords["riley"]) == 429  # even the right password
    # Only a hash of "address|e-mail" is stored, one row per counted failure.
    stored = rows(db, key_hash(address, email))
    assert len(stored) == 5
    with session_scope(db.engine) as s:
        hashes = s.exec(select(LoginFailure.key_hash)).all()
    assert all(len(h) == 64 and "@" not in h for h in hashes)
    # Someone else, elsewhere, is not locked out by those failures.
    assert await attempt(b, new_address(), email, "wrong") == 401


@BOTH
async def test_a_success_on_one_instance_clears_the_key_for_both(db: SeededDb, two_apps: list[Any]) -> None:
    a, b = two_apps
    address, email = new_address(), "riley@acme.example"
    for _ in range(4):
        assert await attempt(a, address, email, "wrong") == 401
    assert await attempt(b, address, email, db.passwords["riley"]) == 303
    assert rows(db, key_hash(address, email)) == []
    assert [await attempt(a, address, email, "wrong") for _ in range(5)] == [401] * 5
    assert await attempt(b, address, email, "wrong") == 429


@BOTH
async def test_old_failures_do_not_count_and_are_pruned(db: SeededDb, two_apps: list[Any]) -> None:
    a, _b = two_apps
    address, email = new_address(), "avery@acme.example"
    digest, stale = key_hash(address, email), key_hash(new_address(), "someone@acme.example")
    long_ago = utcnow() - timedelta(minutes=16)
    with session_scope(db.engine) as s:
        s.add_all([LoginFailure(key_hash=digest, failed_at=long_ago) for _ in range(5)])
        s.add(LoginFailure(key_hash=stale, failed_at=long_ago))
    assert await attempt(a, address, email, "wrong") == 401  # five old failures: not blocked
    assert rows(db, stale) == []  # pruned as the new failure came in
    kept = rows(db, digest)
    assert len(kept) == 1 and kept[0].failed_at.replace(tzinfo=None) > long_ago.replace(tzinfo=None)


@BOTH
async def test_parallel_guesses_get_five_tries_in_all(db: SeededDb, two_apps: list[Any]) -> None:
    """An attempt is counted before the password is checked, so a burst of guesses spread over
    two instances cannot all slip past a count taken before any of them failed. A burst may be
    refused more than strictly needed (the attempts count each other); never less."""
    address, email = new_address(), "ada@acme.example"
    burst = await asyncio.gather(*(attempt(two_apps[i % 2], address, email, "wrong") for i in range(12)))
    assert set(burst) <= {401, 429} and burst.count(401) <= 5
    tried = burst.count(401)
    assert len(rows(db, key_hash(address, email))) == tried  # refused attempts leave nothing behind
    then = [await attempt(two_apps[i % 2], address, email, "wrong") for i in range(6 - tried)]
    assert then == [401] * (5 - tried) + [429]  # five tries in all
