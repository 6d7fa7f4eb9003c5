"""Anchors: signed records of each tenant's audit chain head, kept outside the database.

The chain (orchestrator.audit) shows an edited or deleted row in the middle, but someone who can
write the database can also delete the newest rows, or rewrite the whole chain with fresh hashes.
An anchor is one JSON line `{tenant_id, seq, hash, at, key_id, sig}` appended to the file named by
FRONTDESK_AUDIT_ANCHOR_FILE, signed with HMAC-SHA256 under FRONTDESK_AUDIT_ANCHOR_KEY and/or with
Ed25519 under FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE (`ed25519_key_id`, `ed25519_sig`, checkable
with the public key alone: orchestrator.anchor_keys); `verify` compares the rows with every
anchor, so a missing tail or a rewrite before an anchor shows.

A head is anchored only after the rows since the tenant's previous anchor verify (`Anchorer`),
so an anchor never vouches for a chain that was already broken. Writers append one line per
`write()` on an O_APPEND descriptor: API replicas sharing the file do not interleave lines.
The file's own protection (append-only attribute, WORM bucket, another host) is the operator's;
docs/audit.md says how.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from orchestrator.anchor_keys import Keys, check_record, load_private_key, sign_record
from orchestrator.audit_verify import HEAD, PURGE, Anchor, Report, start_point, unvouched_purge, walk
from orchestrator.models import AuditHead, utcnow
from orchestrator.settings import Settings

log = logging.getLogger(__name__)
VERSION = 1


@dataclass
class AnchorLog:
    """What the anchor file holds: the valid anchors per tenant (in file order) and its problems."""

    path: str
    by_tenant: dict[str, list[Anchor]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def of(self, tenant_id: str) -> list[Anchor]:
        return self.by_tenant.get(tenant_id, [])

    def newest(self, tenant_id: str) -> Anchor | None:
        anchors = [a for a in self.of(tenant_id) if a.kind == HEAD]
        return max(anchors, key=lambda a: a.seq) if anchors else None


def sign(
    key: bytes | Keys, tenant_id: str, seq: int, head_hash: str, at: datetime | None = None, kind: str = HEAD
) -> str:
    """One anchor line (without its newline): a head, or a purge's last removed row; signed by
    each key given (bytes: an HMAC key)."""
    when = (at or utcnow()).isoformat(timespec="microseconds")
    record: dict[str, object] = {
        "v": VERSION,
        "tenant_id": tenant_id,
        "seq": seq,
        "hash": head_hash,
        "at": when,
    }
    if kind != HEAD:  # head records keep the shape they had
        record["kind"] = kind
    return json.dumps(sign_record(record, Keys.of(key)), sort_keys=True, separators=(",", ":"))


def append(path: str | Path, lines: Iterable[str]) -> int:
    """Append whole lines, each in one write() on an O_APPEND descriptor, then fsync."""
    data = [f"{line}\n".encode() for line in lines]
    if not data:
        return 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        for chunk in data:
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(data)


def read(path: str | Path, key: bytes | Keys) -> AnchorLog:
    """Every valid anchor; a line that does not parse or whose signature fails is a problem."""
    out, keys = AnchorLog(str(path)), Keys.of(key)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return out
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:  # a write cut short by a crash leaves the last line without its newline
        out.problems.append(f"line {len(lines)} of {path} is incomplete (no newline): ignored")
        lines.pop()
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            tenant, seq, head, at = record["tenant_id"], record["seq"], record["hash"], record["at"]
            if not (isinstance(tenant, str) and isinstance(seq, int) and isinstance(head, str)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            out.problems.append(f"line {number} of {path} is not an anchor record")
            continue
        problem, _ = check_record(record, keys)
        if problem:
            out.problems.append(f"line {number} of {path} {problem} (tenant {tenant}, seq {seq})")
            continue
        kind = str(record.get("kind", HEAD))
        out.by_tenant.setdefault(tenant, []).append(Anchor(tenant, seq, head, str(at), number, kind))
    return out


def record_at(path: str | Path, line: int) -> dict[str, object]:
    """The record on a line of the anchor file (1-based, as `Anchor.line`), as it was signed."""
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == line:
                return dict(json.loads(raw))
    raise LookupError(f"{path} has no line {line}")


def covering(log: AnchorLog, tenant_id: str, seq: int) -> Anchor | None:
    """The first head anchor at or after `seq`: the shortest chain from that row to a signed head."""
    heads = [a for a in log.of(tenant_id) if a.kind == HEAD and a.seq >= seq]
    return min(heads, key=lambda a: a.seq) if heads else None


def configured(settings: Settings) -> tuple[str, Keys] | None:
    """The anchor file and its keys; ValueError when the signing key file cannot be used."""
    if not settings.audit_anchor_file:
        return None
    hmac_key = settings.audit_anchor_key.get_secret_value().encode() or None
    signing = settings.audit_anchor_signing_key_file
    return settings.audit_anchor_file, Keys(hmac_key, load_private_key(signing) if signing else None)


@dataclass(frozen=True)
class AnchorResult:
    tenant_id: str
    seq: int
    hash: str
    written: bool
    problem: str = ""


class Anchorer:
    """Anchors the heads that moved since the last anchor it knows of (from the file, read once)."""

    def __init__(self, engine: Engine, path: str, key: bytes | Keys) -> None:
        self.engine, self.path, self.key = engine, path, key
        self._known: dict[str, Anchor] | None = None

    def known(self) -> dict[str, Anchor]:
        if self._known is None:
            anchors = read(self.path, self.key)
            self._known = {t: a for t in anchors.by_tenant if (a := anchors.newest(t)) is not None}
        return self._known

    def run(self, tenant_id: str | None = None) -> list[AnchorResult]:
        known = self.known()
        results: list[AnchorResult] = []
        lines: list[str] = []  # purge records that go before their heads
        with Session(self.engine) as session:
            query = select(AuditHead)
            if tenant_id is not None:
                query = query.where(AuditHead.tenant_id == tenant_id)
            heads = [(h.tenant_id, h.seq, h.last_hash) for h in session.exec(query)]
            for tenant, seq, head_hash in heads:
                last = known.get(tenant)
                if last is not None and (last.seq, last.hash) == (seq, head_hash):
                    results.append(AnchorResult(tenant, seq, head_hash, False))
                    continue
                problem, purge = self._refusal(session, tenant, seq, head_hash, last)
                if problem:
                    log.error("audit chain of tenant %s not anchored: %s", tenant, problem)
                elif purge is not None:
                    lines.append(sign(self.key, tenant, *purge, kind=PURGE))
                results.append(AnchorResult(tenant, seq, head_hash, not problem, problem))
            session.rollback()
        append(self.path, lines + [sign(self.key, r.tenant_id, r.seq, r.hash) for r in results if r.written])
        for r in results:
            if r.written:
                known[r.tenant_id] = Anchor(r.tenant_id, r.seq, r.hash, "")
        return results

    def _refusal(
        self, session: Session, tenant: str, seq: int, head_hash: str, last: Anchor | None
    ) -> tuple[str, tuple[int, str] | None]:
        """Why this head must not be anchored ("" when it may): the rows since the last anchor must
        verify and end at the head, and a purge since then must be signed. The first anchor of a
        chain that starts at a purge signs that purge too: anchoring vouches from when it starts."""
        if last is not None and last.seq > seq:
            return f"the head is at seq {seq}, but seq {last.seq} was anchored: rows were removed", None
        report = walk(session, tenant, since=(last.seq, last.hash) if last else None, upto=seq)
        if not report.ok:
            return f"first bad row: seq {report.bad_seq}: {report.problem}", None
        if (report.last_seq, report.last_hash) != (seq, head_hash):
            return f"the head (seq {seq}) is not the end of the chain (seq {report.last_seq})", None
        if last is None:
            return "", (report.start_seq, report.start_hash) if report.start_seq else None
        purged = start_point(session, tenant)
        if not purged[0]:
            return "", None
        signed = read(self.path, self.key).of(tenant)  # only chains with a purge need the file again
        return unvouched_purge(Report(tenant, start_seq=purged[0], start_hash=purged[1]), signed), None


@asynccontextmanager
async def periodic(settings: Settings, engine: Engine) -> AsyncIterator[None]:
    """The API process's anchoring loop, for the lifespan of the app (off without an anchor file)."""
    where = configured(settings)
    if where is None or settings.audit_anchor_interval_seconds <= 0:
        yield
        return
    anchorer = Anchorer(engine, *where)

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(anchorer.run)
            except Exception:
                log.exception("anchoring the audit chain heads failed; retrying next period")
            await asyncio.sleep(settings.audit_anchor_interval_seconds)

    task = asyncio.create_task(loop(), name="audit-anchor")
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
