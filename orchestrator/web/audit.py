"""The Audit page: the tenant's trail, filtered and paged, with CSV / JSON Lines export (`audit:read`).

    GET /audit?task=&actor=&action=&since=&until=&before=<seq>     newest first, 50 a page
    GET /audit/export?format=csv|jsonl&...                          every matching event

Same service as `GET /api/audit` (orchestrator.services.audit_log); the export is here too because
pages sign in with a cookie, not a bearer token. Times typed in the form are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.errors import Unprocessable
from orchestrator.services import audit_log
from orchestrator.services.audit_log import AuditFilter
from orchestrator.web.deps import WebAllowed, WebUser
from orchestrator.web.render import render
from orchestrator.web.timeline import people_names

router = APIRouter(include_in_schema=False)
AuditReader = Annotated[WebUser, Depends(WebAllowed("audit", "read"))]
PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=120)]


def _time(raw: str, label: str) -> datetime | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(
            f"“{raw}” is not a time for “{label}”: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)."
        ) from None


def _filter(task: str, actor: str, action: str, since: str, until: str) -> AuditFilter:
    return AuditFilter(
        task=task.strip() or None,
        actor=actor.strip() or None,
        action=action.strip() or None,
        since=_time(since, "From"),
        until=_time(until, "Until"),
    )


@router.get("/audit", name="web_audit")
def audit_page(
    request: Request,
    db: SessionDep,
    user: AuditReader,
    task: Text = "",
    actor: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
    before: Annotated[int | None, Query(ge=1, le=audit_log.MAX_SEQ)] = None,
) -> HTMLResponse:
    typed = {"task": task, "actor": actor, "action": action, "since": since, "until": until}
    query = {k: v for k, v in typed.items() if v}
    context: dict[str, Any] = {**typed, "query": urlencode(query), "filtered": bool(query), "before": before}
    try:
        result = audit_log.page(db, user.tenant_id, _filter(**typed), PAGE_SIZE, before)
    except Unprocessable as exc:
        return render(request, "audit.html", {**context, "error": exc.detail, "page": None}, 422)
    older = urlencode({**query, "before": result.next_before}) if result.next_before else None
    names = people_names(db, user.tenant_id)
    return render(request, "audit.html", {**context, "page": result, "older": older, "names": names})


@router.get("/audit/export", name="web_audit_export")
def audit_export(
    state: StateDep,
    user: AuditReader,
    format: Annotated[Literal["csv", "jsonl"], Query()] = "csv",
    task: Text = "",
    actor: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
) -> StreamingResponse:
    events = audit_log.stream(state.engine, user.tenant_id, _filter(task, actor, action, since, until))
    body = audit_log.csv_lines(events) if format == "csv" else audit_log.jsonl(events)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit-{user.tenant_id}.{format}"'},
    )
