"""Web UI tests over ASGI: a person signs in through the real login form and gets a session
cookie; `Browser.post` sends the page's CSRF token like the forms do.

`web_app` is the app without Temporal (pages that only read the database); tests that run tasks
use the `stack` fixture and `sign_in(stack.app, ...)`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SeededDb, stack_settings

from orchestrator.app import build_state, create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    client: httpx.AsyncClient
    csrf: str

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, **kw)

    async def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)

    async def refresh_csrf(self, path: str = "/account") -> str:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code}"
        self.csrf = found.group(1)
        return self.csrf


async def sign_in(app: Any, db: SeededDb, who: str) -> Browser:
    """Sign `who` in through GET/POST /login; returns a client holding the session cookie."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://frontdesk")
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert form.status_code == 200 and token, form.text[:500]
    email = f"{who}@acme.example"
    r = await client.post(
        "/login", data={"email": email, "password": db.passwords[who], "csrf_token": token.group(1)}
    )
    assert r.status_code == 303, r.text[:500]
    browser = Browser(client, "")
    await browser.refresh_csrf("/account")
    return browser


@pytest.fixture
async def web_app(sqlite_db: SeededDb, tmp_path: Path) -> AsyncIterator[Any]:
    settings = stack_settings(sqlite_db, "http://127.0.0.1:9", tmp_path)
    yield create_app(settings, state=build_state(settings, engine=sqlite_db.engine))


@pytest.fixture
async def browser_for(web_app: Any, sqlite_db: SeededDb) -> AsyncIterator[Any]:
    """`await browser_for("ada")`: a signed-in client on `web_app`."""
    opened: list[Browser] = []

    async def open_as(who: str) -> Browser:
        b = await sign_in(web_app, sqlite_db, who)
        opened.append(b)
        return b

    yield open_as
    for b in opened:
        await b.client.aclose()
