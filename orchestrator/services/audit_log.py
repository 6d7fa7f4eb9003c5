"""Reading the audit trail: one tenant's events, filtered, newest first, in keyset pages or exported.

    filters    task id, actor, action (exact, or a prefix ending in `*`: `checkpoint.*`), time
               (`since` inclusive, `until` exclusive, UTC)
    paging     `before=<seq>`: the events older than that one (every page as fast as the first)
    export     JSON Lines or CSV, every matching event, streamed in keyset batches

The caller's tenant is the only one ever read (`audit:read` is asked by the edges).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from orchestrator.errors import Unprocessable
from orchestrator.models import AuditEvent, as_utc, table_of

EVENTS = table_of(AuditEvent)
MAX_LIMIT = 500
MAX_SEQ = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL
EXPORT_BATCH = 1000
CSV_COLUMNS = ("seq", "at", "actor", "action", "subject", "reason", "task_id", "data", "prev_hash", "hash")


class AuditFilter(BaseModel):
    task: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def any(self) -> bool:
        return any(v not in (None, "") for v in self.model_dump().values())


class AuditEventPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str
    task_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    tenant_id: str
    items: list[AuditEventPublic]
    next_before: int | None  # pass as `before` for the next (older) page; null: this is the last


def _conditions(tenant_id: str, f: AuditFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [EVENTS.c.tenant_id == tenant_id]
    if f.task:
        where.append(EVENTS.c.task_id == f.task)
    if f.actor:
        where.append(EVENTS.c.actor == f.actor)
    if f.action:
        if f.action.endswith("*"):
            prefix = f.action[:-1]
            if "*" in prefix:  # % and _ are escaped by startswith(autoescape=True)
                raise Unprocessable(
                    "An action filter is a name, or a prefix ending in one `*` (`checkpoint.*`)."
                )
            where.append(EVENTS.c.action.startswith(prefix, autoescape=True))
        else:
            where.append(EVENTS.c.action == f.action)
    since, until = _utc(f.since, "since"), _utc(f.until, "until")
    if since and until and since >= until:
        raise Unprocessable("`since` must be earlier than `until`.")
    if since:
        where.append(EVENTS.c.at >= since)
    if until:
        where.append(EVENTS.c.at < until)
    return where


def _utc(at: datetime | None, name: str) -> datetime | None:
    if at is None:
        return None
    try:
        return as_utc(at)
    except OverflowError:  # 0001-01-01 with a positive offset, 9999-12-31 with a negative one
        raise Unprocessable(f"`{name}` is outside the range of dates: give a time in UTC.") from None


def _public(row: Any) -> AuditEventPublic:
    return AuditEventPublic(
        seq=row.seq,
        at=as_utc(row.at),
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        reason=row.reason,
        task_id=row.task_id,
        data=json.loads(row.data_json),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _rows(session: Session, tenant_id: str, f: AuditFilter, limit: int, before: int | None) -> list[Any]:
    where = _conditions(tenant_id, f)
    if before is not None:
        where.append(EVENTS.c.seq < before)
    query = select(EVENTS).where(*where).order_by(EVENTS.c.seq.desc()).limit(limit)
    return list(session.execute(query))


def page(
    session: Session, tenant_id: str, f: AuditFilter, limit: int = 100, before: int | None = None
) -> AuditPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"`limit` must be from 1 to {MAX_LIMIT}.")
    rows = _rows(session, tenant_id, f, limit + 1, before)
    more = len(rows) > limit
    items = [_public(r) for r in rows[:limit]]
    return AuditPage(tenant_id=tenant_id, items=items, next_before=items[-1].seq if more else None)


def stream(
    engine: Engine, tenant_id: str, f: AuditFilter, before: int | None = None
) -> Iterator[AuditEventPublic]:
    """Every matching event, newest first; one short read per batch, so no connection is held
    while the client reads (an export of a large trail can take minutes). Bad filters are refused
    here, before a response starts."""
    _conditions(tenant_id, f)

    def batches(before: int | None) -> Iterator[AuditEventPublic]:
        while True:
            with Session(engine) as session:
                rows = _rows(session, tenant_id, f, EXPORT_BATCH, before)
            for row in rows:
                yield _public(row)
            if len(rows) < EXPORT_BATCH:
                return
            before = rows[-1].seq

    return batches(before)


def jsonl(events: Iterator[AuditEventPublic]) -> Iterator[bytes]:
    for e in events:
        yield (e.model_dump_json() + "\n").encode()


def csv_lines(events: Iterator[AuditEventPublic]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        out = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        return out

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for e in events:
        row = e.model_dump(mode="json")
        row["data"] = json.dumps(e.data, sort_keys=True, separators=(",", ":"))
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
        yield flush()


def _cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ (formula injection) gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
