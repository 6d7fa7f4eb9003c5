"""/api/audit: the tenant's audit trail, for admins and auditors (`audit:read`).

    GET /api/audit?task=&actor=&action=checkpoint.*&since=&until=&limit=100&before=<seq>
    GET /api/audit?format=jsonl | format=csv        every matching event, streamed

Newest first. Page with `before=<next_before>`; an export ignores `limit` and streams every event
that matches (and is older than `before`, when given). Each event carries `prev_hash` and `hash`,
so an export can be checked against the chain (`frontdesk audit verify`, docs/audit.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from orchestrator.api.deps import Allowed, SessionDep, StateDep
from orchestrator.api.errors import PROBLEMS
from orchestrator.services import audit_log
from orchestrator.services.access import Principal
from orchestrator.services.audit_log import AuditFilter, AuditPage

router = APIRouter(prefix="/api", tags=["audit"], responses=PROBLEMS)
Reader = Annotated[Principal, Depends(Allowed("audit", "read"))]
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The audit trail: filter, page, export as JSON Lines or CSV",
    responses={200: {"content": {MEDIA["jsonl"]: {}, "text/csv": {}}}},
)
def list_audit(
    user: Reader,
    session: SessionDep,
    state: StateDep,
    task: Annotated[str | None, Query(max_length=40, description="a task id")] = None,
    actor: Annotated[
        str | None, Query(max_length=120, description="who: a user id, `system`, `cli:<name>`")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=60, description="an action, or a prefix ending in `*` (`checkpoint.*`)")
    ] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive; no zone = UTC)")] = None,
    until: Annotated[
        datetime | None, Query(description="before this time (exclusive; no zone = UTC)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit_log.MAX_LIMIT)] = 100,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=audit_log.MAX_SEQ,
            description="a seq (the `next_before` you got): the page of older events",
        ),
    ] = None,
    format: Annotated[
        Literal["json", "jsonl", "csv"], Query(description="json (a page) or an export")
    ] = "json",
) -> AuditPage | StreamingResponse:
    f = AuditFilter(task=task, actor=actor, action=action, since=since, until=until)
    if format == "json":
        return audit_log.page(session, user.tenant_id, f, limit, before)
    session.close()  # the export reads in its own short sessions
    events = audit_log.stream(state.engine, user.tenant_id, f, before)
    body = audit_log.jsonl(events) if format == "jsonl" else audit_log.csv_lines(events)
    name = f"audit-{user.tenant_id}.{format}"
    return StreamingResponse(
        body, media_type=MEDIA[format], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
