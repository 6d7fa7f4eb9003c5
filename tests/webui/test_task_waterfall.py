"""The task page's waterfall against the real stack: a refund with one approval shows a bar and a
table row for each step, model call, tool call and checkpoint wait the API reports, with the
figures the API's rows give."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from orchestrator.web.waterfall import duration_text
from webui.conftest import sign_in
from webui.test_task_pages import submit_refund


async def test_a_refund_page_shows_where_its_time_and_money_went(stack) -> None:  # type: ignore[no-untyped-def]
    riley = await sign_in(stack.app, stack.db, "riley")
    order = stack.make_order("300.00")
    task_id = await submit_refund(riley, order)
    cp = await stack.open_checkpoint(task_id)

    waiting = (await riley.get(f"/tasks/{task_id}")).text
    assert "Where the time and money went" in waiting
    assert re.search(r"approval of issue_refund \(open\)</td><td>waiting for a decision</td><td>[^<]+</td><td>[^<]+ so far</td>", waiting)

    r = await stack.api.post(f"/api/checkpoints/{cp['id']}/decision", json={"decision": "approve"}, headers=stack.auth("avery"))
    assert r.status_code == 200, r.text
    done = await stack.wait(task_id, {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    detail = (await stack.api.get(f"/api/tasks/{task_id}", headers=stack.auth("riley"))).json()

    page = (await riley.get(f"/tasks/{task_id}")).text
    svg = re.search(r'<svg class="chart waterfall".*?</svg>', page, re.S)
    assert svg and 'role="img"' in svg.group(0) and f"Time and cost of task {task_id}" in svg.group(0)
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page)
    kinds = [k for _, k, _, _, _ in rows]
    assert kinds.count("step") == len([s for s in detail["steps"] if s["started_at"]]) > 0
    assert kinds.count("model call") == len(detail["model_calls"]) >= 3
    assert kinds.count("tool call") == len(detail["tool_calls"]) >= 2
    assert kinds.count("waiting for a decision") == 1
    assert " so far" not in page.split("Where the time and money went")[1].split("<h2>Timeline</h2>")[0]

    checkpoint = detail["checkpoints"][0]
    waited = datetime.fromisoformat(checkpoint["decided_at"]) - datetime.fromisoformat(checkpoint["created_at"])
    wait_row = next(r for r in rows if r[1] == "waiting for a decision")
    assert wait_row[0] == "approval of issue_refund (approved)" and wait_row[3] == duration_text(waited.total_seconds() * 1000)
    model_costs = sorted(Decimal(r[4].lstrip("$").replace(",", "")) for r in rows if r[1] == "model call")
    assert model_costs == sorted(Decimal(m["cost_usd"]).quantize(Decimal("0.000001")) for m in detail["model_calls"])
    step_costs = sum(Decimal(r[4].lstrip("$").replace(",", "")) for r in rows if r[1] == "step")
    assert step_costs == Decimal(done["cost"]["total_usd"]).quantize(Decimal("0.000001"))
