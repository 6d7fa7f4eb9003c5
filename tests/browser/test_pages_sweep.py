"""Every page each demo person can reach from the header, in a real browser, laptop and phone size.

The pages come from the signed-in header navigation (`header nav a`), so a page added later is
swept as soon as the navigation shows it. For each one: it answers 200 on the address the nav
gave, has exactly one <h1>, shows no traceback, shows the demo-model banner, raises no CSP refusal
or script error, loads all its sub-resources, has no serious or critical axe violation (at laptop
and at phone size) and does not scroll sideways on a phone. Screenshots go to
artifacts/screenshots/sweep-<who>-<slug>.png and sweep-<who>-<slug>-phone.png.

All problems of one person's pages are reported together, so one run shows the whole picture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import TERMINAL
from playwright.async_api import Page, expect

from browser.axe import blocking_violations, describe
from browser.conftest import LAPTOP, PHONE, LiveStack, NewContext, PageLog, page_of, take_shot, watch

PEOPLE = ["riley", "avery", "ada", "dana"]

# Where a sideways overflow starts: elements whose box, or whose visible (unclipped) content,
# reaches past the right edge while their parent's box does not.
_OVERFLOW_ORIGINS = """() => {
  const limit = window.innerWidth + 1;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const reach = el => {
    const box = el.getBoundingClientRect();
    const spills = getComputedStyle(el).overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1;
    return spills ? Math.max(box.right, box.left + el.scrollWidth) : box.right;
  };
  return [...document.body.querySelectorAll('*')]
    .filter(el => reach(el) > limit &&
                  (!el.parentElement || el.parentElement.getBoundingClientRect().right <= limit))
    .slice(0, 5)
    .map(el => `${name(el)} (reaches ${Math.round(reach(el))}px)`);
}"""


def slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "home"


async def nav_paths(page: Page) -> list[str]:
    hrefs: list[str] = await page.locator("header nav a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return list(dict.fromkeys(urlsplit(h).path for h in hrefs if h))


async def check_page(page: Page, live: LiveStack, log: PageLog, who: str, path: str) -> list[str]:
    """Open `path` at laptop size, then look at it at phone size; returns what is wrong with it."""
    problems: list[str] = []
    await page.set_viewport_size(LAPTOP)
    log.clear()
    response = await page.goto(live.url(path))
    if response is None or response.status != 200:
        problems.append(f"answered {response.status if response else 'nothing'}")
    if urlsplit(page.url).path != path:
        problems.append(f"ended on {page.url} instead")
    headings = await page.locator("h1").all_inner_texts()
    if len(headings) != 1:
        problems.append(f"has {len(headings)} <h1> elements {headings}, not exactly one")
    if "Traceback" in await page.content():
        problems.append("shows a Python traceback")
    if await page.get_by_text("Demo model").filter(visible=True).count() == 0:
        problems.append("does not show the demo-model banner")
    name = f"sweep-{who}-{slug(path)}"
    await take_shot(page, name)
    found = await blocking_violations(page)
    if found:
        problems.append("accessibility:\n" + describe(found))

    await page.set_viewport_size(PHONE)
    width: dict[str, Any] = await page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    if width["scroll"] > width["inner"] + 1:
        origins = await page.evaluate(_OVERFLOW_ORIGINS)
        problems.append(
            f"scrolls sideways on a phone: {width['scroll']}px wide in a {width['inner']}px viewport; "
            f"starts at {', '.join(origins) or 'an element outside <body>'}"
        )
    await take_shot(page, f"{name}-phone")
    found = await blocking_violations(page)  # some rules (scrollable regions) only bite when narrow
    if found:
        problems.append("accessibility at phone size:\n" + describe(found))
    problems += log.problems()
    return [f"{path}: {p}" for p in problems]


def report(who: str, problems: list[str]) -> str:
    return f"pages of {who} have problems (screenshots in artifacts/screenshots/):\n" + "\n".join(problems)


@pytest.fixture(scope="module")
async def busy_tenant(live_stack: LiveStack) -> AsyncIterator[dict[str, Any]]:
    """One refund waiting for approval while the pages are swept, so lists, the inbox and cost
    pages have rows to show; rejected afterwards, so no open checkpoint is left in the shared
    database for later tests."""
    stack = live_stack.stack
    order = stack.make_order("300.00")
    task = await stack.submit(
        f"Customer on order {order} asks for a refund of 150 EUR: the lamp arrived broken."
    )
    checkpoint = await stack.open_checkpoint(task["id"])
    yield task
    r = await stack.decide(checkpoint["id"], "reject", comment="browser sweep done")
    assert r.status_code == 200, r.text
    await stack.wait(task["id"], TERMINAL)


@pytest.mark.parametrize("who", PEOPLE)
async def test_every_page_in_the_navigation(
    who: str, live_stack: LiveStack, new_context: NewContext, busy_tenant: dict[str, Any]
) -> None:
    context = await new_context(who)
    page = await page_of(context)
    log = watch(page)
    await page.goto(live_stack.url("/"))
    paths = await nav_paths(page)  # may be empty while a role's pages are not built yet
    problems: list[str] = []
    for path in [*paths, "/account"]:
        problems += await check_page(page, live_stack, log, who, path)
    assert not problems, report(who, problems)


async def test_sign_in_page(live_stack: LiveStack, new_context: NewContext) -> None:
    context = await new_context()
    page = await context.new_page()
    log = watch(page)
    problems = await check_page(page, live_stack, log, "signed-out", "/login")
    assert not problems, report("a signed-out visitor", problems)


async def test_detail_pages(
    live_stack: LiveStack, new_context: NewContext, busy_tenant: dict[str, Any]
) -> None:
    """The pages reached from lists, not from the navigation: a task, its checkpoint, the catalog's
    detail pages and the preview; and the error page a person sees for an unknown id."""
    task = await live_stack.stack.task(busy_tenant["id"])
    checkpoint = next(c for c in task["checkpoints"] if c["status"] == "open")
    problems: list[str] = []
    pages = {
        "avery": [f"/tasks/{task['id']}", f"/checkpoints/{checkpoint['id']}"],
        "riley": [f"/tasks/{task['id']}", f"/checkpoints/{checkpoint['id']}"],
        "dana": [
            "/catalog/workflows/refund_request@2",
            "/catalog/agents/refund_agent",
            "/catalog/tools/issue_refund",
            "/catalog/preview",
        ],
    }
    for who, paths in pages.items():
        page = await page_of(await new_context(who))
        log = watch(page)
        for path in paths:
            problems += await check_page(page, live_stack, log, who, path)
    assert not problems, report("detail pages", problems)

    page = await page_of(await new_context("riley"))
    response = await page.goto(live_stack.url("/tasks/tsk_00000000000000000000"))
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    await expect(page.get_by_text("No task 'tsk_00000000000000000000' in tenant 'acme'")).to_be_visible()
    assert "Traceback" not in await page.content()
    await take_shot(page, "sweep-riley-error-404")
    found = await blocking_violations(page)
    assert not found, describe(found)
