"""Browser tests: Debian's chromium, driven by Playwright, against a real HTTP server.

`live_stack` is the whole stack (real Temporal dev server, the LiteLLM proxy in front of the demo
model, a worker, SQLite) with the app served by uvicorn on 127.0.0.1, so cookies, CSP, redirects
and forms behave exactly as they do for a person. uvicorn runs in the test's own event loop
because the Temporal client is bound to that loop.

Playwright cannot download its own browser build on these machines: `make test` installs Debian's
chromium and axe-core (see the Makefile's `browser-deps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from conftest import SeededDb, Stack, running_stack
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from repo_paths import REPO_ROOT
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from orchestrator.db import session_scope
from orchestrator.models import User

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: without these, chromium keeps dialling Google's hosts.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
DEMO_DOMAIN = "acme.example"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C must still stop pytest, not just this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 in this event loop; yields its base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port between
    choosing it and listening on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A page's event stream may still be open at the end of the session: like `frontdesk api`
    # (orchestrator/server.py), stop waiting for open connections after a grace period.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=10
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not server.started:
            if task.done():  # startup failed: surface uvicorn's own error
                task.result()
                raise AssertionError("uvicorn stopped before it started")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("uvicorn did not start within 30 s")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class LiveStack:
    base_url: str
    stack: Stack

    @property
    def db(self) -> SeededDb:
        return self.stack.db

    @property
    def passwords(self) -> dict[str, str]:
        return self.stack.db.passwords

    def url(self, path: str) -> str:
        return self.base_url + path

    def name(self, who: str) -> str:
        """The display name the header and /account show for a demo person."""
        with session_scope(self.db.engine) as session:
            user = session.exec(select(User).where(User.email == f"{who}@{DEMO_DOMAIN}")).one()
            return user.name


@pytest.fixture(scope="session")
async def live_stack(
    sqlite_db: SeededDb,
    temporal_env: WorkflowEnvironment,
    router_url: str,
    demo_model_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LiveStack]:
    """API + UI over real HTTP, one worker, real Temporal and router; shared by all browser tests."""
    state_dir = tmp_path_factory.mktemp("live")
    async with (
        running_stack(sqlite_db, temporal_env.client, router_url, demo_model_url, state_dir) as stack,
        serve(stack.app) as base_url,
    ):
        await banner_known(base_url)
        yield LiveStack(base_url, stack)


async def banner_known(base_url: str, timeout: float = 15) -> None:
    """Wait until pages show the demo-model banner. The first page a process renders starts its
    probe of the router's upstream and does not wait for it; the dev stack's readiness check is
    that first page, as this is."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while 'class="demo-banner"' not in (await client.get("/login")).text:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"no demo-model banner after {timeout} s: the API did not learn from the router "
                    "(GET /model/info) that its upstream is the demo model"
                )
            await asyncio.sleep(0.1)


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make browser-deps).",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@dataclass
class PageLog:
    """What went wrong in the browser on a page: CSP refusals, script errors, failed loads."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)  # sub-resources answered with >= 400

    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def problems(self) -> list[str]:
        return (
            [f"CSP refused: {m[:240]}" for m in self.csp_violations()]
            + [f"script error: {m[:240]}" for m in self.page_errors]
            + [f"failed to load: {m}" for m in self.failed_loads]
        )

    def clear(self) -> None:
        self.console_errors.clear()
        self.page_errors.clear()
        self.failed_loads.clear()


IGNORED_LOADS = ("/favicon.ico",)  # chromium asks for it on its own; the app has none


def watch(page: Page) -> PageLog:
    """Start recording the page's errors (see PageLog)."""
    log = PageLog()

    def on_response(response: Any) -> None:
        request = response.request
        if response.status >= 400 and not request.is_navigation_request():
            if not urlsplit(response.url).path.endswith(IGNORED_LOADS):
                log.failed_loads.append(f"{response.status} {request.method} {response.url}")

    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("response", on_response)
    return log


async def sign_in(page: Page, live: LiveStack, who: str) -> None:
    """Through the real form, as a person would; ends on the page the app sends them to."""
    await page.goto(live.url("/login"))
    await page.get_by_label("E-mail").fill(f"{who}@{DEMO_DOMAIN}")
    await page.get_by_label("Password").fill(live.passwords[who])
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    if "/login" in page.url:
        error = await page.locator("[role=alert]").all_inner_texts()
        raise AssertionError(f"signing in as {who} failed: {error or page.url}")


NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture
async def new_context(browser: Browser, live_stack: LiveStack) -> AsyncIterator[NewContext]:
    """`await new_context("riley")`: a fresh context (own cookies), signed in when `who` is given.

    `phone=True` gives a 390x844 viewport instead of 1280x800; other keywords go to Playwright.
    Contexts are closed when the test ends."""
    opened: list[BrowserContext] = []

    async def make(who: str | None = None, *, phone: bool = False, **options: Any) -> BrowserContext:
        context = await browser.new_context(viewport=PHONE if phone else LAPTOP, **options)
        context.set_default_timeout(15_000)
        opened.append(context)
        if who is not None:
            page = await context.new_page()
            await sign_in(page, live_stack, who)
        return context

    yield make
    for context in opened:
        await context.close()


async def page_of(context: BrowserContext) -> Page:
    """The context's page (the one sign-in used), or a new one."""
    return context.pages[0] if context.pages else await context.new_page()


# --- screenshots -------------------------------------------------------------------------------


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"


async def take_shot(page: Page, name: str) -> Path:
    """Full-page screenshot to artifacts/screenshots/<name>.png (git-ignored), for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{_file_name(name)}.png"
    await page.screenshot(path=str(target), full_page=True)
    return target


async def take_phone_shot(page: Page, name: str) -> Path:
    """The same page at phone size (390x844): <name>-phone.png; the viewport stays phone-sized."""
    await page.set_viewport_size(PHONE)
    return await take_shot(page, f"{name}-phone")


@pytest.fixture
def shot() -> Callable[[Page, str], Awaitable[Path]]:
    return take_shot


@pytest.fixture
def phone_shot() -> Callable[[Page, str], Awaitable[Path]]:
    return take_phone_shot
