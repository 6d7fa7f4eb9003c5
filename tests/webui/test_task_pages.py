"""The requester's and the approver's pages against the real stack (Temporal, worker, LiteLLM,
demo model): submit through the form, wait, decide in the inbox with edits, follow the timeline."""

from __future__ import annotations

import asyncio
import html
import re
from decimal import Decimal

from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import RefundLedger
from orchestrator.models import Task
from webui.conftest import sign_in


def task_id_from(location: str) -> str:
    found = re.fullmatch(r"/tasks/(tsk_[0-9a-f]+)", location)
    assert found, location
    return found.group(1)


async def submit_refund(riley, order: str, amount: str = "150") -> str:  # type: ignore[no-untyped-def]
    r = await riley.post(
        "/tasks",
        {"input": f"Customer on order {order} asks for a refund of {amount} EUR: it arrived broken.",
         "workflow": "refund_request@1", "idempotency_key": f"k-{order}"},
    )
    assert r.status_code == 303, r.text[:2000]
    return task_id_from(r.headers["location"])


async def test_refund_through_the_pages_with_edits(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    avery = await sign_in(stack.app, stack.db, "avery")
    order = stack.make_order("300.00")
    task_id = await submit_refund(riley, order)

    cp = await stack.open_checkpoint(task_id)
    page = await riley.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    assert 'id="task-status">waiting<' in page.text
    assert "issue_refund" in page.text and "policy: approve" in page.text

    inbox = await avery.get("/inbox")
    assert f'/checkpoints/{cp["id"]}' in inbox.text
    assert "0 of 1" in inbox.text and "data-due=" in inbox.text
    assert (await riley.get("/inbox")).status_code == 403

    detail = await avery.get(f"/checkpoints/{cp['id']}")
    assert order in detail.text and "Approve with edits" in detail.text
    assert cp["rule_id"] in detail.text
    assert 'name="arg.amount"' in detail.text and 'name="arg.currency"' in detail.text  # from the args model

    # Bad edits come back with the field's message and what was typed.
    bad = await avery.post(
        f"/checkpoints/{cp['id']}/edits",
        {"arg.order_id": "nope", "arg.amount": "120", "arg.currency": "EUR", "arg.reason": "partial"},
    )
    assert bad.status_code == 422
    assert 'value="nope"' in bad.text and "should match pattern" in bad.text

    review = await avery.post(
        f"/checkpoints/{cp['id']}/edits",
        {"arg.order_id": order, "arg.amount": "120", "arg.currency": "EUR", "arg.reason": "partial refund",
         "comment": "only the lamp"},
    )
    assert review.status_code == 200
    assert "Review your edits" in review.text and "<del>150" in review.text and "<ins>120" in review.text
    edited = re.search(r'name="edited_args_json" value="([^"]+)"', review.text)
    assert edited
    with session_scope(stack.db.engine) as s:
        assert list(s.exec(select(RefundLedger).where(RefundLedger.order_id == order))) == []  # not yet

    r = await avery.post(
        f"/checkpoints/{cp['id']}/decision",
        {"decision": "approve_with_edits", "comment": "only the lamp", "edited_args_json": html.unescape(edited.group(1))},
    )
    assert r.status_code == 303, r.text[:2000]
    done = await stack.wait(task_id, {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    with session_scope(stack.db.engine) as s:
        rows = list(s.exec(select(RefundLedger).where(RefundLedger.order_id == order)))
    assert [r.amount for r in rows] == [Decimal("120.00")]

    final = await riley.get(f"/tasks/{task_id}")
    assert 'id="task-status">completed<' in final.text
    assert "Avery Approver</strong> — approve with edits" in final.text
    assert "<del>150" in final.text and "<ins>120" in final.text
    total = Decimal(done["cost"]["total_usd"])
    assert total > 0 and f"${total:,.6f}" in final.text
    history = await avery.get("/decisions")
    assert cp["id"] in history.text and "only the lamp" in history.text
    api = await stack.api.get("/api/checkpoints/decisions/mine", headers=stack.auth("avery"))
    assert any(d["checkpoint_id"] == cp["id"] and d["decision"] == "approve_with_edits" for d in api.json()["items"])


async def test_timeline_streams_changes_until_the_task_ends(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    order = stack.make_order("300.00")
    task_id = await submit_refund(riley, order)
    cp = await stack.open_checkpoint(task_id)

    events = asyncio.create_task(riley.get(f"/tasks/{task_id}/events", timeout=60))
    await asyncio.sleep(1.0)  # the stream has sent its first timeline by now
    assert not events.done()
    r = await stack.decide(cp["id"], "approve", comment="ok")
    assert r.status_code == 200, r.text
    body = (await events).text
    assert body.startswith("retry: 2000")
    timelines = re.findall(r"event: timeline\n((?:data: .*\n)+)", body)
    assert len(timelines) >= 2
    assert 'id="task-status">waiting<' in timelines[0]
    assert 'id="task-status">completed<' in timelines[-1]
    assert body.rstrip().endswith("event: done\ndata: ended")


async def test_submit_form_errors_keep_the_input(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    r = await riley.post("/tasks", {"input": "   ", "workflow": "refund_request@1"})
    assert r.status_code == 422 and "request text is empty" in r.text
    assert '<option value="refund_request@1" selected>' in r.text
    r = await riley.post("/tasks", {"input": "Refund ORD-1001 please", "budget_usd": "ten"})
    assert r.status_code == 422 and "is not a number" in r.text and "Refund ORD-1001 please</textarea>" in r.text
    r = await riley.post("/tasks", {"input": "Refund ORD-1001 please", "workflow": "refund_request", "budget_usd": "99999"})
    assert r.status_code == 422 and "Budget" in r.text
    r = await riley.post("/tasks", {"input": "Refund ORD-1001 please", "workflow": "no_such_flow"})
    assert r.status_code == 422 and "no_such_flow" in r.text
    ambiguous = await riley.post("/tasks", {"input": "hello, can you do the thing for me"})
    assert ambiguous.status_code == 422 and 'name="choose"' in ambiguous.text
    with session_scope(stack.db.engine) as s:
        assert s.exec(select(Task).where(Task.input_text == "   ")).first() is None
    # Choosing one of intake's options starts the task.
    choice = re.search(r'name="choose" value="([^"]+)"', ambiguous.text).group(1)  # type: ignore[union-attr]
    started = await riley.post("/tasks", {"input": "hello, can you do the thing for me", "choose": choice})
    assert started.status_code == 303
    await riley.post(f"/tasks/{task_id_from(started.headers['location'])}/cancel")


async def test_attachment_is_read_with_the_request(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    order = stack.make_order("40.00")
    files = {"attachment": ("mail.txt", f"From the customer: order {order}, please refund 20 EUR.".encode(), "text/plain")}
    r = await riley.client.post(
        "/tasks",
        data={"csrf_token": riley.csrf, "input": "See the attached e-mail: refund request.", "workflow": "refund_request@1"},
        files=files,
    )
    assert r.status_code == 303, r.text[:1500]
    task_id = task_id_from(r.headers["location"])
    task = await stack.task(task_id)
    assert task["data"]["attachment"]["filename"] == "mail.txt"
    assert order in task["input"] and "--- attachment: mail.txt ---" in task["input"]
    page = await riley.get(f"/tasks/{task_id}")
    assert "mail.txt" in page.text
    await stack.wait(task_id, {"completed", "failed"})

    binary = {"attachment": ("scan.pdf", b"%PDF-1.7\x00\x01\x02", "application/pdf")}
    r = await riley.client.post(
        "/tasks", data={"csrf_token": riley.csrf, "input": "see scan", "workflow": "refund_request@1"}, files=binary
    )
    assert r.status_code == 422 and "only text documents" in r.text


async def test_cancel_and_permissions_on_task_pages(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    avery = await sign_in(stack.app, stack.db, "avery")
    ada = await sign_in(stack.app, stack.db, "ada")
    task_id = await submit_refund(riley, stack.make_order("300.00"))
    cp = await stack.open_checkpoint(task_id)

    # The requester may not decide her own checkpoint; the page says why and the POST is refused.
    own = await riley.get(f"/checkpoints/{cp['id']}")
    assert own.status_code == 200 and "someone else must decide" in own.text and 'value="approve"' not in own.text
    r = await riley.post(f"/checkpoints/{cp['id']}/decision", {"decision": "approve"})
    assert r.status_code == 403
    # An approver sees the task but has no cancel button and cannot cancel it.
    page = await avery.get(f"/tasks/{task_id}")
    assert page.status_code == 200 and "Cancel task" not in page.text
    assert (await avery.post(f"/tasks/{task_id}/cancel")).status_code == 403
    # Another tenant never sees it.
    await ada.post("/tenant", {"tenant": "acme-eu"})
    await ada.refresh_csrf()
    assert (await ada.get(f"/tasks/{task_id}")).status_code == 404
    assert (await ada.get(f"/checkpoints/{cp['id']}")).status_code == 404

    page = await riley.get(f"/tasks/{task_id}")
    assert "Cancel task" in page.text
    r = await riley.post(f"/tasks/{task_id}/cancel")
    assert r.status_code == 303
    done = await stack.wait(task_id, {"cancelled"})
    assert done["status"] == "cancelled"
    again = await riley.post(f"/tasks/{task_id}/cancel")
    assert again.status_code == 409 and "already ended" in again.text

    listing = await riley.get("/tasks?status=cancelled")
    assert task_id in listing.text
    listing = await riley.get("/tasks?status=completed&workflow=ticket_triage")
    assert task_id not in listing.text


async def test_only_deciders_may_review_edits(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    task_id = await submit_refund(riley, stack.make_order("300.00"))
    cp = await stack.open_checkpoint(task_id)
    r = await riley.post(f"/checkpoints/{cp['id']}/edits", {"arg.amount": "999"})
    assert r.status_code == 403 and "someone else must decide" in r.text
    await riley.post(f"/tasks/{task_id}/cancel")
    await stack.wait(task_id, {"cancelled"})


async def test_timeline_stream_ends_when_the_session_does(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    task_id = await submit_refund(riley, stack.make_order("300.00"))
    await stack.open_checkpoint(task_id)
    events = asyncio.create_task(riley.get(f"/tasks/{task_id}/events", timeout=60))
    await asyncio.sleep(0.5)
    began = asyncio.get_running_loop().time()
    assert (await riley.post("/logout")).status_code == 303
    body = (await asyncio.wait_for(events, 20)).text
    assert asyncio.get_running_loop().time() - began < 10  # ends at the next re-check, not after 600 s
    assert "event: timeline" in body and "event: done" not in body
    await stack.api.post(f"/api/tasks/{task_id}/cancel", headers=stack.auth("riley"))
    await stack.wait(task_id, {"cancelled"})


async def test_request_changes_needs_a_comment(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    avery = await sign_in(stack.app, stack.db, "avery")
    task_id = await submit_refund(riley, stack.make_order("300.00"))
    cp = await stack.open_checkpoint(task_id)
    page = await avery.post(f"/checkpoints/{cp['id']}/decision", {"decision": "request_changes", "comment": " "})
    assert page.status_code == 422 and "needs a comment" in page.text
    api = await stack.decide(cp["id"], "request_changes", comment="")
    assert api.status_code == 422
    ok = await avery.post(
        f"/checkpoints/{cp['id']}/decision", {"decision": "request_changes", "comment": "ask for a photo first"}
    )
    assert ok.status_code == 303
    done = await stack.wait(task_id, {"completed", "failed", "rejected"})
    assert done["checkpoints"][0]["status"] == "changes_requested"
