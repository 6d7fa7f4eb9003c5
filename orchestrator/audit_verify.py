"""Verify a tenant's audit chain, name the first bad row, and hold it against the anchors.

`walk` streams the rows in seq order and recomputes each hash (orchestrator.audit's digest), so
it finds, in order of the chain:

- a gap in seq (a deleted row)                           -> the missing seq
- a row whose prev_hash is not its predecessor's hash    -> that row (it or its predecessor changed)
- a row whose content does not give its hash (an edit)   -> that row
- a row whose hash differs from a signed anchor of its seq (the chain was rewritten with fresh
  hashes, which only something outside the database can show) -> located between the last
  anchor that still matched and this one
- an anchor beyond the last row (the newest rows were deleted) -> the first missing seq

`verify_tenant` adds the chain head in `audit_head`, so a deleted tail shows even without anchors
as long as the head was left alone. A retention purge (orchestrator.audit_retention) leaves an
`audit.purged` event recording the seq and hash of the last row it removed; the walk starts there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import func, select
from sqlmodel import Session

from orchestrator.audit import GENESIS, _digest
from orchestrator.models import AuditEvent, AuditHead, table_of

EVENTS = table_of(AuditEvent)
HEADS = table_of(AuditHead)
PURGED = "audit.purged"
HEAD, PURGE = "head", "purge"  # the kinds of anchor
BATCH = 5000


@dataclass(frozen=True)
class Anchor:
    """A signed head record from outside the database (orchestrator.audit_anchor reads them)."""

    tenant_id: str
    seq: int
    hash: str
    at: str  # ISO 8601 UTC
    line: int = 0  # its line in the anchor file, for messages
    kind: str = HEAD  # HEAD: the chain's head then; PURGE: the last row a purge removed


@dataclass
class Report:
    tenant_id: str
    ok: bool = True
    checked: int = 0
    start_seq: int = 0  # the walk began after this seq (0, or a purge's last removed row)
    start_hash: str = GENESIS
    last_seq: int = 0
    last_hash: str = GENESIS
    anchors_checked: int = 0
    newest_anchor: Anchor | None = None
    bad_seq: int | None = None  # the first bad row (or the first missing seq)
    bad_row_id: int | None = None
    problem: str = ""
    notes: list[str] = field(default_factory=list)

    def fail(self, seq: int | None, problem: str, row_id: int | None = None) -> Report:
        self.ok, self.bad_seq, self.bad_row_id, self.problem = False, seq, row_id, problem
        return self

    @property
    def summary(self) -> str:
        if not self.ok:
            where = f"first bad row: seq {self.bad_seq}" + (
                f" (id {self.bad_row_id})" if self.bad_row_id else ""
            )
            return f"tenant {self.tenant_id}: BROKEN, {where}: {self.problem}"
        anchored = (
            f"; matches {self.anchors_checked} anchor(s), the newest at seq {self.newest_anchor.seq}"
            if self.newest_anchor
            else ""
        )
        start = f" from seq {self.start_seq + 1} (older rows purged)" if self.start_seq else ""
        return f"tenant {self.tenant_id}: ok, {self.checked} events verified{start}{anchored}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "checked": self.checked,
            "start_seq": self.start_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "anchors_checked": self.anchors_checked,
            "newest_anchor_seq": self.newest_anchor.seq if self.newest_anchor else None,
            "bad_seq": self.bad_seq,
            "bad_row_id": self.bad_row_id,
            "problem": self.problem,
            "notes": self.notes,
        }


def start_point(session: Session, tenant_id: str) -> tuple[int, str]:
    """(seq, hash) the chain continues from: the newest purge's last removed row, or the genesis."""
    row = session.execute(
        select(EVENTS.c.data_json)
        .where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.action == PURGED)
        .order_by(EVENTS.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, GENESIS
    data = json.loads(row[0])
    return int(data["through_seq"]), str(data["through_hash"])


def walk(
    session: Session,
    tenant_id: str,
    *,
    since: tuple[int, str] | None = None,
    upto: int | None = None,
    anchors: list[Anchor] | None = None,
) -> Report:
    """Recompute the chain after `since` (default: the start point) up to `upto` (default: all)."""
    start = start_point(session, tenant_id)
    if since is not None and since[0] > start[0]:
        start = since
    report = Report(tenant_id, start_seq=start[0], start_hash=start[1], last_seq=start[0], last_hash=start[1])
    pending = sorted((a for a in anchors or [] if a.seq > start[0] and a.kind == HEAD), key=lambda a: a.seq)
    report.newest_anchor = pending[-1] if pending else None
    matched = start[0]  # the last seq an anchor vouched for
    query = select(EVENTS).where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq > start[0])
    if upto is not None:
        query = query.where(EVENTS.c.seq <= upto)
    rows = session.connection().execute(query.order_by(EVENTS.c.seq).execution_options(yield_per=BATCH))
    prev, expected = start[1], start[0] + 1
    for row in rows:
        if row.seq != expected:
            return report.fail(
                expected, f"seq {expected} is missing: after seq {expected - 1} comes seq {row.seq} (deleted)"
            )
        if row.prev_hash != prev:
            return report.fail(
                row.seq,
                f"its prev_hash is not the hash of seq {row.seq - 1}: this row or the one before it was "
                "changed, or rows were reordered",
                row.id,
            )
        if _digest(prev, cast(AuditEvent, row)) != row.hash:
            return report.fail(row.seq, "its content does not give its hash (edited)", row.id)
        while pending and pending[0].seq == row.seq:
            anchor = pending.pop(0)
            if anchor.hash != row.hash:
                return report.fail(
                    row.seq,
                    f"its hash differs from the anchor signed at {anchor.at} (line {anchor.line}): the chain "
                    f"was rewritten somewhere in seq {matched + 1}..{row.seq}",
                    row.id,
                )
            report.anchors_checked += 1
            matched = row.seq
        prev, expected = row.hash, expected + 1
        report.checked += 1
    report.last_seq, report.last_hash = expected - 1, prev
    if pending:
        newest = pending[-1]
        return report.fail(
            expected,
            f"seq {expected}..{newest.seq} are missing: the anchor signed at {newest.at} (line {newest.line}) "
            f"recorded seq {newest.seq} (the newest rows were deleted)",
        )
    return report


def verify_tenant(session: Session, tenant_id: str, anchors: list[Anchor] | None = None) -> Report:
    """The whole chain of one tenant against its head row and the anchors (read before the head,
    so none can be newer than the head it is held against)."""
    head = session.execute(
        select(HEADS.c.seq, HEADS.c.last_hash).where(HEADS.c.tenant_id == tenant_id)
    ).first()
    head_seq, head_hash = (head[0], head[1]) if head is not None else (0, GENESIS)
    report = walk(session, tenant_id, upto=head_seq if head is not None else None, anchors=anchors)
    if anchors is None:
        report.notes.append("no anchor file configured: a deleted tail or a full rewrite would not show")
    if not report.ok:
        return report
    unvouched = unvouched_purge(report, anchors or [])
    if unvouched:
        return report.fail(report.start_seq, unvouched)
    if head is None:
        if report.checked:
            return report.fail(report.last_seq, "the tenant has events but no chain head row (audit_head)")
        return report
    if head_seq > report.last_seq:
        return report.fail(
            report.last_seq + 1,
            f"seq {report.last_seq + 1}..{head_seq} are missing: the chain head says seq {head_seq} "
            "(the newest rows were deleted)",
        )
    if head_hash != report.last_hash:
        return report.fail(
            head_seq, "the chain head's hash differs from this row's: the newest row or the head was changed"
        )
    beyond = session.execute(
        select(func.count()).where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq > head_seq)
    ).scalar_one()
    if beyond:  # rows not written through audit.record() may sit past the head
        report.notes.append(
            f"{beyond} row(s) past the head (seq > {head_seq}) were written since the head was read"
        )
    return report


def unvouched_purge(report: Report, anchors: list[Anchor]) -> str:
    """Rows before the walk's start are gone by a purge. Once a tenant's chain is anchored, every
    purge must be signed too (`frontdesk audit purge` signs its last removed row): otherwise an
    `audit.purged` event appended by someone without the key would hide deleted rows."""
    if not report.start_seq or not any(a.kind == HEAD for a in anchors):
        return ""
    if any(a.kind == PURGE and (a.seq, a.hash) == (report.start_seq, report.start_hash) for a in anchors):
        return ""
    return (
        f"seq 1..{report.start_seq} are gone as purged, but no signed purge record vouches for it: "
        "rows were deleted and an audit.purged event written without the anchor key"
    )


def tenants(session: Session, extra: list[str] | None = None) -> list[str]:
    """Every tenant with a chain (a head or rows), and `extra` (e.g. the anchors' tenants)."""
    names = set(session.execute(select(HEADS.c.tenant_id)).scalars())
    names |= set(session.execute(select(EVENTS.c.tenant_id).distinct()).scalars())
    return sorted(names | set(extra or []))
