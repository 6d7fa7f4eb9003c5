"""The refund flow end to end in two browsers: Riley submits and watches, Avery approves with
edits in another context; Riley's timeline updates without a reload and ends with the cost."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.async_api import expect

from browser.axe import assert_accessible
from browser.conftest import page_of, take_shot


async def test_refund_flow_two_browsers(live_stack, new_context) -> None:  # type: ignore[no-untyped-def]
    order = live_stack.stack.make_order("300.00")
    riley = await page_of(await new_context("riley"))
    avery = await page_of(await new_context("avery"))

    # Riley: the form, a preview, then submit.
    await riley.goto(live_stack.url("/tasks/new"))
    await riley.get_by_label("What do you need?").fill(
        f"Order {order}: the customer wants 150 EUR back, the lamp arrived broken."
    )
    await riley.get_by_label("Workflow").select_option("refund_request@1")
    await riley.get_by_role("button", name="Preview").click()
    await expect(riley.locator("#preview")).to_contain_text("issue_refund")
    await take_shot(riley, "flow-1-riley-submit-with-preview")
    await assert_accessible(riley, "task form with preview")
    async with riley.expect_navigation():
        await riley.get_by_role("button", name="Submit task").click()
    assert re.search(r"/tasks/tsk_[0-9a-f]+$", riley.url), riley.url
    task_id = riley.url.rsplit("/", 1)[1]
    await riley.evaluate("window.__sameDocument = true")  # gone if the page ever reloads

    # It waits for an approver, and the page says so by itself.
    await expect(riley.locator("#task-status")).to_have_text("waiting", timeout=30_000)
    await expect(riley.get_by_text("policy: approve")).to_be_visible()
    await take_shot(riley, "flow-2-riley-waiting")

    # Avery: the inbox, the checkpoint, approve with edits (120 instead of 150), diff, confirm.
    await avery.goto(live_stack.url("/inbox"))
    row = avery.locator("tr", has_text=order)
    await expect(row).to_have_count(1)
    await take_shot(avery, "flow-3-avery-inbox")
    async with avery.expect_navigation():
        await row.get_by_role("link").first.click()
    await expect(avery.get_by_role("heading", level=1)).to_contain_text("issue_refund")
    await assert_accessible(avery, "checkpoint page")
    await avery.get_by_label("Amount").fill("120")
    async with avery.expect_navigation():
        await avery.get_by_role("button", name="Review edits").click()
    diff = avery.locator(".diff")
    await expect(diff.first).to_contain_text("150")
    await expect(diff.first).to_contain_text("120")
    await avery.locator("#edit-comment").fill("only the lamp is refunded")
    await take_shot(avery, "flow-4-avery-review-edits")
    async with avery.expect_navigation():
        await avery.get_by_role("button", name="Confirm: approve with these edits").click()
    await expect(avery.locator("#cp-status")).to_have_text("approved", timeout=15_000)

    # Riley's page follows without a reload, to the end and its cost.
    await expect(riley.locator("#task-status")).to_have_text("completed", timeout=30_000)
    assert await riley.evaluate("window.__sameDocument === true"), "the task page reloaded"
    await expect(riley.locator("#task-outcome")).to_have_text("resolved")
    await expect(riley.get_by_text("approve with edits")).to_be_visible()
    await expect(riley.get_by_text("only the lamp is refunded").first).to_be_visible()
    task = await live_stack.stack.task(task_id)
    total = Decimal(task["cost"]["total_usd"])
    assert total > 0
    await expect(riley.locator("#task-cost")).to_have_text(f"${total:,.6f}")
    assert task["tool_calls"][-1]["args"]["amount"] in ("120", "120.00", 120)
    await take_shot(riley, "flow-5-riley-completed")
    await assert_accessible(riley, "completed task page")
