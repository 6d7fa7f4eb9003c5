"""The printable evidence page and its JSON download, against the real stack: a refund approved
with an edit shows every model call, tool call, the checkpoint with its decision and edit, and the
task's audit events; the downloaded bundle passes `frontdesk audit verify-bundle`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from orchestrator.cli.main import main
from webui.conftest import sign_in
from webui.test_task_pages import submit_refund


async def test_the_evidence_page_prints_what_the_task_did(stack: Any, tmp_path: Path, capsys: Any) -> None:
    riley = await sign_in(stack.app, stack.db, "riley")
    order = stack.make_order("300.00")
    task_id = await submit_refund(riley, order)
    cp = await stack.open_checkpoint(task_id)
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={"decision": "approve_with_edits", "edited_args": {**cp["args"], "amount": "120.00"}, "comment": "half"},
        headers=stack.auth("avery"),
    )
    assert r.status_code == 200, r.text
    done = await stack.wait(task_id, {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]

    task_page = (await riley.get(f"/tasks/{task_id}")).text
    assert f'/tasks/{task_id}/evidence">Evidence</a>' in task_page

    page = await riley.get(f"/tasks/{task_id}/evidence")
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert "Every digest and hash in this bundle checks." in html
    assert '/static/evidence.css"' in html and "<form" not in html.split('<main id="main"')[1]
    model_rows = re.findall(r"<tr><td>[^<]*·[^<]*</td>\s*<td>(tier-[^<]+)</td>", html)
    assert len(model_rows) == len(done["model_calls"]) >= 3
    assert len(re.findall(r'<code class="digest">[0-9a-f]{64}</code>', html)) > 3 * len(done["model_calls"])
    assert "<td>amount</td><td>150.00</td><td>120.00</td>" in html  # the edit diff
    assert "<strong>approve_with_edits</strong> (round 1) — “half”" in html
    events = re.findall(r"<tr><td>(\d+)</td><td>[^<]+</td><td>[^<]+</td><td>([a-z_.]+)</td>", html)
    assert events[0][1] == "task.submitted" and events[-1][1] == "task.ended"
    assert "Not linked: anchoring is off" in html  # this stack has no anchor file

    download = await riley.get(f"/tasks/{task_id}/evidence.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="evidence-{task_id}.json"'
    path = tmp_path / "evidence.json"
    path.write_bytes(download.content)
    assert main(["audit", "verify-bundle", str(path)]) == 0, capsys.readouterr().out
    assert "NOT LINKED" in capsys.readouterr().out

    assert (await riley.get("/tasks/tsk_nope/evidence")).status_code == 404
