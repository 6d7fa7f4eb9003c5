"""A task's evidence, printable: the bundle of GET /api/tasks/{id}/evidence as a page, and as JSON.

    GET /tasks/{id}/evidence         the page (server-rendered, a print stylesheet, no script)
    GET /tasks/{id}/evidence.json    the bundle to download and check with `frontdesk audit verify-bundle`

Who may read it, and what they get, is orchestrator.services.evidence's (docs/evidence.md).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.evidence import verify
from orchestrator.services import evidence
from orchestrator.web.deps import WebUserDep
from orchestrator.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/tasks/{task_id}/evidence", name="web_task_evidence")
def evidence_page(
    request: Request, db: SessionDep, state: StateDep, user: WebUserDep, task_id: str
) -> HTMLResponse:
    bundle = evidence.build(db, state, user.principal, task_id)
    # The same check a third party runs offline (without the anchor key, which the page never holds).
    verdict = verify(bundle.model_dump(mode="json"))
    return render(request, "tasks/evidence.html", {"b": bundle, "verdict": verdict, "task_id": task_id})


@router.get("/tasks/{task_id}/evidence.json", name="web_task_evidence_json")
def evidence_json(db: SessionDep, state: StateDep, user: WebUserDep, task_id: str) -> Response:
    bundle = evidence.build(db, state, user.principal, task_id)
    return Response(
        json.dumps(bundle.model_dump(mode="json"), indent=1),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="evidence-{task_id}.json"'},
    )
