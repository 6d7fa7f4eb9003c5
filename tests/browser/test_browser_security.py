"""Sessions and CSRF in a real browser against the real server.

127.0.0.1 on another port is the same *site* as Frontdesk, so SameSite=Lax still sends the
session cookie with a forged form post from there: only the CSRF check stands between that page
and the person's session. `localhost` is another site, where SameSite already keeps the cookie
back; both must leave the person signed in and unchanged.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Locator, Page, Response, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from browser.conftest import LiveStack, NewContext, page_of, serve, take_shot
from orchestrator.web import sessions

EVIL_PAGE = """<!doctype html>
<html lang="en"><head><title>You won a prize</title></head>
<body>
<h1>Claim your prize</h1>
<form id="f" method="post" action="{action}">{fields}<button>Claim</button></form>
<script>document.getElementById("f").submit();</script>
</body></html>"""


def evil_app(frontdesk: str) -> Starlette:
    """Another origin's page that makes the visitor's browser post a form to Frontdesk."""

    def forge(request: Request) -> HTMLResponse:
        target = request.path_params["target"]
        fields = {"logout": {}, "tenant": {"tenant": "acme-eu"}}[target]
        if request.query_params.get("token"):
            fields = {**fields, "csrf_token": request.query_params["token"]}  # a guessed token
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        return HTMLResponse(EVIL_PAGE.format(action=html.escape(f"{frontdesk}/{target}"), fields=inputs))

    return Starlette(routes=[Route("/forge/{target}", forge)])


@pytest.fixture(scope="module")
async def evil_port(live_stack: LiveStack) -> AsyncIterator[int]:
    async with serve(evil_app(live_stack.base_url), lifespan="off") as url:
        yield urlsplit(url).port  # type: ignore[misc]


async def forged_post(page: Page, live: LiveStack, evil_url: str, target: str) -> Response:
    """Open the evil page; return Frontdesk's answer to the form post it fires."""
    expected = live.url(f"/{target}")
    async with page.expect_response(lambda r: r.url == expected and r.request.method == "POST") as answer:
        await page.goto(evil_url)
    response = await answer.value
    await page.wait_for_load_state()
    return response


def sign_out_button(page: Page) -> Locator:
    return page.locator("header").get_by_role("button", name="Sign out", exact=True)


async def assert_signed_in_as(
    context: BrowserContext, live: LiveStack, who: str, tenant: str = "acme"
) -> None:
    page = await context.new_page()
    await page.goto(live.url("/account"))
    assert urlsplit(page.url).path == "/account", f"{who} was signed out: ended on {page.url}"
    await expect(page.locator("h1")).to_have_text("Your account")
    await expect(page.locator("dt:text-is('Name') + dd")).to_have_text(live.name(who))
    await expect(page.locator("dt:text-is('Tenant') + dd")).to_have_text(tenant)
    await page.close()


@pytest.mark.parametrize("evil_host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("guessed_token", ["", "forged-token"])
async def test_forged_cross_origin_posts_are_refused(
    live_stack: LiveStack, new_context: NewContext, evil_port: int, evil_host: str, guessed_token: str
) -> None:
    suffix = f"?token={guessed_token}" if guessed_token else ""
    evil = f"http://{evil_host}:{evil_port}/forge"
    for who, target in [("riley", "logout"), ("ada", "tenant")]:
        context = await new_context(who)
        page = await page_of(context)
        response = await forged_post(page, live_stack, f"{evil}/{target}{suffix}", target)
        if evil_host == "127.0.0.1":
            # Same site: the browser sent the session cookie, so the CSRF check is what refused it.
            assert response.status == 403, (who, target, response.status)
            await expect(page.locator("h1")).to_have_text("Request refused")
            await expect(page.get_by_role("alert")).to_contain_text("CSRF")
        else:
            # Another site: SameSite=Lax kept the cookie back, so Frontdesk saw nobody signed in.
            assert response.status in (401, 403), (who, target, response.status)
            await expect(page.locator("h1")).to_have_text(
                "Request refused" if response.status == 403 else "Please sign in"
            )
        assert not response.headers.get("location"), "a forged post must not redirect anywhere"
        await assert_signed_in_as(context, live_stack, who, tenant="acme")


async def test_tampered_token_on_frontdesks_own_page_is_refused(
    live_stack: LiveStack, new_context: NewContext
) -> None:
    """Same origin, real form, wrong token: the token itself is checked, not only the origin."""
    context = await new_context("riley")
    page = await page_of(context)
    await page.goto(live_stack.url("/account"))
    await page.evaluate(
        "() => document.querySelectorAll('input[name=csrf_token]').forEach(i => { i.value = 'tampered'; })"
    )
    async with page.expect_response(lambda r: r.url == live_stack.url("/logout")) as answer:
        await sign_out_button(page).click()
    assert (await answer.value).status == 403
    await expect(page.locator("h1")).to_have_text("Request refused")
    await assert_signed_in_as(context, live_stack, "riley")


async def test_session_cookie_replayed_after_logout_is_refused(
    live_stack: LiveStack, new_context: NewContext
) -> None:
    context = await new_context("riley")
    page = await page_of(context)
    [cookie] = [c for c in await context.cookies() if c["name"] == sessions.COOKIE]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    stolen = f"{sessions.COOKIE}={cookie['value']}"
    async with httpx.AsyncClient(base_url=live_stack.base_url) as client:
        before = await client.get("/account", headers={"Cookie": stolen})
    assert before.status_code == 200 and live_stack.name("riley") in before.text  # the copy works while live

    async with page.expect_navigation():
        await sign_out_button(page).click()
    assert urlsplit(page.url).path == "/login"
    assert sessions.COOKIE not in {c["name"] for c in await context.cookies()}

    replay = await new_context()
    # Exactly as the browser held it. (Playwright's `url=` form would mark it not Secure on http,
    # which chromium rightly refuses for a __Host- cookie; on an IP address it is host-only anyway.)
    await replay.add_cookies([cookie])  # type: ignore[list-item]
    assert [c["value"] for c in await replay.cookies() if c["name"] == sessions.COOKIE] == [cookie["value"]]
    thief = await replay.new_page()
    await thief.goto(live_stack.url("/account"))
    assert urlsplit(thief.url).path == "/login", thief.url
    await expect(thief.locator("h1")).to_have_text("Sign in")
    await expect(thief.get_by_text(live_stack.name("riley"))).to_have_count(0)
    await take_shot(thief, "security-replayed-cookie")

    async with httpx.AsyncClient(base_url=live_stack.base_url) as client:
        after = await client.get("/account", headers={"Cookie": stolen})
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")


async def test_wrong_password_with_the_keyboard_only(live_stack: LiveStack, new_context: NewContext) -> None:
    context = await new_context()
    page = await context.new_page()
    await page.goto(live_stack.url("/login"))

    async def focused() -> str:
        return await page.evaluate("() => document.activeElement ? document.activeElement.id : ''")  # type: ignore[no-any-return]

    for _ in range(10):  # skip link, brand, then the form: Tab order follows the page
        await page.keyboard.press("Tab")
        if await focused() == "email":
            break
    else:
        raise AssertionError("Tab never reached the e-mail field")
    await page.keyboard.type("riley@acme.example")
    await page.keyboard.press("Tab")
    assert await focused() == "password"
    await page.keyboard.type("not-the-password")
    async with page.expect_response(
        lambda r: r.url == live_stack.url("/login") and r.request.method == "POST"
    ) as answer:
        await page.keyboard.press("Enter")
    assert (await answer.value).status == 401
    await page.wait_for_load_state()

    await expect(page.get_by_role("alert")).to_contain_text("do not match")
    email = page.get_by_label("E-mail")
    await expect(email).to_have_value("riley@acme.example")  # what was typed is kept
    await expect(email).to_have_attribute("aria-describedby", "login-error")
    assert sessions.COOKIE not in {c["name"] for c in await context.cookies()}
    await take_shot(page, "security-wrong-password")
