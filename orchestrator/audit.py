"""The append-only, hash-chained audit trail.

Every decision (task submitted, model call, tool authorized or denied, checkpoint opened and
decided, tool run, task ended) is one `AuditEvent`. Events of a tenant form a chain:
`hash = sha256(prev_hash | canonical JSON of the event)`, so an edited or deleted row shows up in
`verify_chain`. The chain head is bumped with an UPDATE first, which takes the row lock on
PostgreSQL and the write lock on SQLite, so concurrent writers (API and workers) never fork it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from orchestrator.models import AuditEvent, AuditHead, table_of, utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, event: AuditEvent) -> str:
    body = json.dumps(
        {
            "tenant_id": event.tenant_id,
            "seq": event.seq,
            "task_id": event.task_id,
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "reason": event.reason,
            "data": json.loads(event.data_json),
            "at": _iso(event.at),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def _iso(at: datetime) -> str:
    # SQLite hands back naive UTC, PostgreSQL aware datetimes in the session's zone.
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


HEAD = table_of(AuditHead)
EVENTS = table_of(AuditEvent)


def record(
    session: Session,
    *,
    tenant_id: str,
    actor: str,
    action: str,
    subject: str = "",
    reason: str = "",
    task_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits or rolls back with the change).

    The tenant's head row is bumped and read in one statement (UPDATE ... RETURNING), which also
    takes its lock until the caller commits: writers of one tenant take their turn, and the chain
    has no gaps or forks."""
    # Core statements on the session's connection: the ORM's bulk-update machinery (about a fifth
    # of this function's CPU) has nothing to synchronise here.
    conn = session.connection()
    bumped = conn.execute(
        update(HEAD)
        .where(HEAD.c.tenant_id == tenant_id)
        .values(seq=HEAD.c.seq + 1)
        .returning(HEAD.c.seq, HEAD.c.last_hash)
    ).first()
    if bumped is None:  # the tenant's first event
        session.add(AuditHead(tenant_id=tenant_id, seq=1, last_hash=GENESIS))
        session.flush()
        seq, prev = 1, GENESIS
    else:
        seq, prev = bumped
    event = AuditEvent(
        tenant_id=tenant_id,
        seq=seq,
        task_id=task_id,
        actor=actor,
        action=action,
        subject=subject,
        reason=reason,
        data_json=json.dumps(data or {}, sort_keys=True, default=str),
        at=utcnow(),
        prev_hash=prev,
        hash="",
    )
    event.hash = _digest(prev, event)
    if session.new or session.dirty or session.deleted:
        session.flush()  # the caller's pending changes first, in the order the ORM would have used
    # Core INSERT: the event is returned as a plain value, and the ORM's unit of work was a fifth
    # of this function's CPU for a row nobody reads back in this transaction.
    conn.execute(insert(EVENTS).values(**event.model_dump(exclude={"id"})))
    conn.execute(update(HEAD).where(HEAD.c.tenant_id == tenant_id).values(last_hash=event.hash))
    return event


def verify_chain(session: Session, tenant_id: str) -> tuple[bool, str]:
    """Recompute the tenant's chain; return (ok, explanation)."""
    prev = GENESIS
    expected_seq = 1
    events = session.exec(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(col(AuditEvent.seq))
    )
    for event in events:
        if event.seq != expected_seq:
            return False, f"event seq {expected_seq} is missing (found {event.seq})"
        if event.prev_hash != prev or _digest(prev, event) != event.hash:
            return False, f"event seq {event.seq} does not match its hash"
        prev = event.hash
        expected_seq += 1
    return True, f"{expected_seq - 1} events verified"
