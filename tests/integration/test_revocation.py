"""A permission revoked under load is refused within 1 s, with no spurious denials for others."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.models import ApiToken, Membership, utcnow
from orchestrator.security import hash_token


async def hammer(stack: Any, who: str, stop: asyncio.Event, log: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        r = await stack.api.get("/api/checkpoints?status=open&limit=1", headers=stack.auth(who))
        log.append((time.monotonic(), r.status_code))


async def test_role_revoked_under_load(api_only: Any) -> None:
    stack = api_only
    blake = stack.db.user_ids["blake"]
    stop = asyncio.Event()
    logs: dict[str, list[tuple[float, int]]] = {"avery": [], "blake": []}
    workers = [
        asyncio.create_task(hammer(stack, who, stop, logs[who]))
        for who in ("avery", "blake")
        for _ in range(4)
    ]
    try:
        await asyncio.sleep(1.0)
        with session_scope(stack.db.engine) as session:
            row = session.exec(
                select(Membership).where(Membership.user_id == blake, Membership.role == "approver")
            ).one()
            session.delete(row)
        revoked_at = time.monotonic()
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await asyncio.gather(*workers)
        with session_scope(stack.db.engine) as session:
            session.add(Membership(tenant_id="acme", user_id=blake, role="approver"))

    assert len(logs["avery"]) > 50 and {code for _, code in logs["avery"]} == {200}
    before = [code for at, code in logs["blake"] if at < revoked_at]
    after_1s = [code for at, code in logs["blake"] if at > revoked_at + 1.0]
    assert before and set(before) == {200}
    assert after_1s and set(after_1s) == {403}


async def test_revoked_token_is_refused_at_once(api_only: Any) -> None:
    stack = api_only
    assert (await stack.api.get("/api/me", headers=stack.auth("dev"))).status_code == 200
    digest = hash_token(stack.db.tokens["dev"])
    with session_scope(stack.db.engine) as session:
        token = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).one()
        token.revoked_at = utcnow()
        session.add(token)
    try:
        r = await stack.api.get("/api/me", headers=stack.auth("dev"))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    finally:
        with session_scope(stack.db.engine) as session:
            token = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).one()
            token.revoked_at = None
            session.add(token)
