"""Sign-in, sessions, CSRF, logout and the tenant switcher, through the real pages."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.models import WebSession
from orchestrator.security import hash_token, verify_password
from orchestrator.web import sessions
from webui.conftest import CSRF, sign_in


async def test_session_cookie_is_host_only_secure_httponly_lax(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk") as c:
        form = await c.get("/login")
        token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        r = await c.post(
            "/login",
            data={"email": "riley@acme.example", "password": sqlite_db.passwords["riley"], "csrf_token": token},
        )
    assert r.status_code == 303
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("__Host-frontdesk_session="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= attrs
    assert "domain" not in attrs
    assert "samesite=lax" in cookie.lower()
    # Only a hash of the cookie is stored.
    value = cookie.split(";")[0].split("=", 1)[1]
    with session_scope(sqlite_db.engine) as s:
        assert s.get(WebSession, value) is None
        assert s.get(WebSession, hash_token(value)) is not None


async def test_wrong_password_is_refused_without_saying_which_part(web_app) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk") as c:
        for email in ("riley@acme.example", "nobody@acme.example"):
            form = await c.get("/login")
            token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
            r = await c.post("/login", data={"email": email, "password": "wrong", "csrf_token": token})
            assert r.status_code == 401
            assert "do not match" in r.text
            assert email in r.text  # what was typed is kept
        assert sessions.COOKIE not in c.cookies


async def test_login_form_without_its_token_is_refused(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk") as c:
        r = await c.post(
            "/login", data={"email": "riley@acme.example", "password": sqlite_db.passwords["riley"]}
        )
    assert r.status_code == 403
    assert "<h1>Request refused</h1>" in r.text


async def test_repeated_failures_are_throttled(web_app) -> None:  # type: ignore[no-untyped-def]
    # The count lives in the (session-wide) test database: an address of its own keeps these
    # failures from locking out the other tests, which sign in from 127.0.0.1.
    transport = httpx.ASGITransport(app=web_app, client=("192.0.2.77", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://frontdesk") as c:
        statuses = []
        for _ in range(6):
            form = await c.get("/login")
            token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
            r = await c.post("/login", data={"email": "dana@acme.example", "password": "x", "csrf_token": token})
            statuses.append(r.status_code)
    assert statuses == [401] * 5 + [429]
    # Somebody else, from another address, is not locked out by those failures.
    transport = httpx.ASGITransport(app=web_app, client=("10.9.8.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://frontdesk") as other:
        form = await other.get("/login")
        token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
        r = await other.post("/login", data={"email": "dana@acme.example", "password": "x", "csrf_token": token})
    assert r.status_code == 401


async def test_pages_need_a_session(web_app) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk") as c:
        r = await c.get("/account?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account%3Fx%3D1"


async def test_logout_kills_the_session_server_side(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    b = await sign_in(web_app, sqlite_db, "riley")
    stolen = b.client.cookies[sessions.COOKIE]
    r = await b.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web_app),
        base_url="https://frontdesk",
        cookies={sessions.COOKIE: stolen},
    ) as replay:
        page = await replay.get("/account")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        post = await replay.post("/logout", data={"csrf_token": b.csrf})
        assert post.status_code == 401
    await b.client.aclose()


async def test_forms_need_the_session_csrf_token(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    b = await sign_in(web_app, sqlite_db, "ada")
    r = await b.client.post("/logout", data={})
    assert r.status_code == 403
    r = await b.client.post("/logout", data={"csrf_token": "forged"})
    assert r.status_code == 403
    r = await b.client.post(
        "/logout", data={"csrf_token": b.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    r = await b.client.post("/logout", data={"csrf_token": b.csrf}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert (await b.get("/account")).status_code == 200  # none of those signed her out
    await b.client.aclose()


async def test_tenant_switcher_only_to_own_tenants(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    b = await sign_in(web_app, sqlite_db, "ada")
    page = await b.get("/account")
    assert 'id="tenant-switch"' in page.text and "Acme Europe (demo)" in page.text
    r = await b.post("/tenant", {"tenant": "globex"})
    assert r.status_code == 422 and "not a member" in r.text
    old_csrf = b.csrf
    r = await b.post("/tenant", {"tenant": "acme-eu"})
    assert r.status_code == 303
    page = await b.get("/account")
    assert "<dt>Tenant</dt><dd>acme-eu</dd>" in page.text
    # the token is renewed with the tenant
    assert (await b.client.post("/logout", data={"csrf_token": old_csrf})).status_code == 403
    await b.client.aclose()


async def test_passwords_are_argon2(sqlite_db) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.models import User

    with session_scope(sqlite_db.engine) as s:
        user = s.exec(select(User).where(User.email == "riley@acme.example")).one()
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(sqlite_db.passwords["riley"], user.password_hash)
    assert not verify_password("nope", user.password_hash)


def test_every_state_changing_page_route_checks_csrf() -> None:
    """A new form handler without the CSRF dependency fails here, not in production."""
    from fastapi.routing import APIRoute

    from orchestrator.web import admin, auth, catalog, cost, inbox, tasks
    from orchestrator.web.deps import check_csrf

    def depends_on_csrf(dependant) -> bool:  # type: ignore[no-untyped-def]
        return any(d.call is check_csrf or depends_on_csrf(d) for d in dependant.dependencies)

    page_posts = [
        r
        for module in (admin, auth, catalog, cost, inbox, tasks)
        for r in module.router.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "DELETE", "PATCH"}
    ]
    assert len(page_posts) >= 15
    unguarded = [r.path for r in page_posts if r.path != "/login" and not depends_on_csrf(r.dependant)]
    assert unguarded == []


async def test_an_oversized_form_gets_a_page_not_json(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("riley")
    r = await b.post("/tasks", {"input": "x" * 70_000})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html") and "The form is too large" in r.text
    api = await b.client.post("/api/tasks", content=b"x" * 70_000, headers={"Content-Type": "application/json"})
    assert api.status_code == 413 and api.headers["content-type"].startswith("application/problem+json")


async def test_the_navigation_marks_one_current_page(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("riley")
    page = await b.get("/tasks/new")
    assert page.text.count('aria-current="page"') == 1
    assert '<a href="/tasks/new" aria-current="page">New task</a>' in page.text


@pytest.mark.postgres
async def test_sessions_on_postgresql(postgres_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sign in, use, switch tenant and sign out against PostgreSQL (the production database)."""
    from conftest import stack_settings

    from orchestrator.app import build_state, create_app

    settings = stack_settings(postgres_db, "http://127.0.0.1:9", tmp_path)
    app = create_app(settings, state=build_state(settings, engine=postgres_db.engine))
    b = await sign_in(app, postgres_db, "ada")
    assert (await b.get("/account")).status_code == 200
    assert (await b.post("/tenant", {"tenant": "acme-eu"})).status_code == 303
    await b.refresh_csrf()
    assert "<dt>Tenant</dt><dd>acme-eu</dd>" in (await b.get("/account")).text
    cookie = b.client.cookies[sessions.COOKIE]
    assert (await b.post("/logout")).status_code == 303
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://frontdesk", cookies={sessions.COOKIE: cookie}
    ) as replay:
        assert (await replay.get("/account")).status_code == 303
    await b.client.aclose()


async def test_the_dev_stack_hint_shows_only_outside_production(sqlite_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import stack_settings

    from orchestrator.app import build_state, create_app

    shown = {}
    for environment in ("development", "production"):
        settings = stack_settings(sqlite_db, "http://127.0.0.1:9", tmp_path, environment=environment)
        app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://frontdesk") as c:
            page = await c.get("/login")
        assert page.status_code == 200
        shown[environment] = "prints the demo logins" in page.text
    assert shown == {"development": True, "production": False}
