"""`frontdesk audit verify|anchor|purge`, the anchors outside the database, the PostgreSQL trigger,
retention, and a tamper test on a 100,000-event trail — on SQLite and PostgreSQL.

Trails are seeded by bulk SQL with hashes computed in Python by the chain's own digest; each
tamper case runs in a transaction that is rolled back, so the cases share one seeded trail. On
PostgreSQL the tampering needs `session_replication_role = replica` (a superuser's way past the
trigger): the application's own statements are refused, which `test_postgres_refuses_*` shows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from conftest import SeededDb
from pydantic import ValidationError
from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from orchestrator import anchor_keys, audit, audit_anchor, audit_retention, audit_verify
from orchestrator.audit_verify import Anchor
from orchestrator.cli.main import main
from orchestrator.db import session_scope
from orchestrator.models import AuditEvent, AuditHead, Tenant, utcnow
from orchestrator.settings import Settings, get_settings

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
PG = pytest.mark.parametrize("db", ["postgres"], indirect=True)
EVENTS = cast(Table, AuditEvent.__table__)  # type: ignore[attr-defined]
HEADS = cast(Table, AuditHead.__table__)  # type: ignore[attr-defined]
KEY = "anchor-key-" + secrets.token_hex(16)
ACTIONS = (
    "task.submitted",
    "model.call",
    "tool.decided",
    "checkpoint.opened",
    "checkpoint.decided",
    "task.ended",
)


def seed_trail(
    db: SeededDb, n: int, *, start: datetime | None = None, step: float = 1.0
) -> tuple[str, list[str]]:
    """A new tenant with `n` chained events (seq 1..n); returns its id and hashes[seq]."""
    tenant = f"chain{secrets.token_hex(4)}"
    start = start or utcnow() - timedelta(seconds=n * step + 60)
    with session_scope(db.engine) as session:
        session.add(Tenant(id=tenant, name=tenant, domain=f"{tenant}.example"))
    rows: list[dict[str, Any]] = []
    hashes, prev = [audit.GENESIS], audit.GENESIS
    for seq in range(1, n + 1):
        row = {
            "tenant_id": tenant,
            "seq": seq,
            "task_id": f"tsk_{seq // 12}",
            "actor": "worker",
            "action": ACTIONS[seq % len(ACTIONS)],
            "subject": f"s{seq}",
            "reason": "",
            "data_json": json.dumps({"n": seq}, sort_keys=True),
            "at": start + timedelta(seconds=seq * step),
            "prev_hash": prev,
        }
        prev = audit._digest(prev, cast(AuditEvent, SimpleNamespace(**row)))
        rows.append({**row, "hash": prev})
        hashes.append(prev)
    with db.engine.begin() as conn:
        for i in range(0, n, 20_000):
            conn.execute(insert(EVENTS), rows[i : i + 20_000])
        conn.execute(insert(HEADS).values(tenant_id=tenant, seq=n, last_hash=prev))
    return tenant, hashes


@contextmanager
def tampering(db: SeededDb) -> Iterator[tuple[Connection, Session]]:
    """A transaction past the trigger (PostgreSQL) that is rolled back afterwards."""
    with db.engine.connect() as conn:
        trans = conn.begin()
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        session = Session(bind=conn)
        try:
            yield conn, session
        finally:
            session.close()
            trans.rollback()


def anchors_at(tenant: str, hashes: list[str], seqs: list[int]) -> list[Anchor]:
    return [Anchor(tenant, s, hashes[s], f"t{s}", i + 1) for i, s in enumerate(seqs)]


class Cli:
    def __init__(self, db: SeededDb, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path) -> None:
        self.capsys, self.anchor_file = capsys, tmp_path / "anchors" / "audit.jsonl"
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("FRONTDESK_DATABASE_URL", db.url)
        monkeypatch.setenv("FRONTDESK_AUDIT_ANCHOR_FILE", str(self.anchor_file))
        monkeypatch.setenv("FRONTDESK_AUDIT_ANCHOR_KEY", KEY)
        get_settings.cache_clear()

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err


@pytest.fixture
def cli(db: SeededDb, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path) -> Iterator[Cli]:
    yield Cli(db, monkeypatch, capsys, tmp_path)
    get_settings.cache_clear()


@BOTH
def test_verify_names_the_first_bad_row(db: SeededDb, cli: Cli) -> None:
    tenant, _ = seed_trail(db, 40)
    code, out, _ = cli("audit", "verify", "--tenant", tenant)
    assert code == 0 and f"tenant {tenant}: ok, 40 events verified" in out, out
    assert "no anchor" not in out  # the anchor file is configured (and has nothing for it yet)

    # The CLI reads through its own connection: damage two rows for real, and put them back after.
    original = _rows(db, tenant, [17, 30])
    _force(db, tenant, 17, reason="rewritten history")
    _force(db, tenant, 30, actor="someone else")
    try:
        code, out, _ = cli("audit", "verify", "--tenant", tenant)
        assert code == 1 and "BROKEN, first bad row: seq 17" in out and "edited" in out, out
        code, out, _ = cli("audit", "verify", "--tenant", tenant, "--json")
        [report] = json.loads(out)["tenants"]
        assert code == 1 and report["bad_seq"] == 17 and report["bad_row_id"] and not report["ok"]
    finally:
        for seq, values in original.items():
            _force(db, tenant, seq, **values)
    assert cli("audit", "verify", "--tenant", tenant)[0] == 0


def _rows(db: SeededDb, tenant: str, seqs: list[int]) -> dict[int, dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(EVENTS.select().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq.in_(seqs)))
        return {r.seq: {"reason": r.reason, "actor": r.actor} for r in rows}


def _force(db: SeededDb, tenant: str, seq: int, **values: Any) -> None:
    """A committed change, past the trigger on PostgreSQL."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            EVENTS.update().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq == seq).values(**values)
        )


@BOTH
def test_an_anchor_detects_deleted_newest_rows(db: SeededDb, cli: Cli) -> None:
    tenant, hashes = seed_trail(db, 30)
    code, out, _ = cli("audit", "anchor", "--tenant", tenant)
    assert code == 0 and f"tenant {tenant}: seq 30" in out and "anchored" in out, out
    assert cli("audit", "anchor", "--tenant", tenant)[1].count("unchanged since its last anchor") == 1
    line = json.loads(cli.anchor_file.read_text().splitlines()[-1])
    assert line["tenant_id"] == tenant and line["seq"] == 30 and line["hash"] == hashes[30]
    assert KEY not in cli.anchor_file.read_text() and len(line["sig"]) == 64

    # The newest five rows go, and the head is set back to cover the tracks: the chain itself is
    # whole (seq 1..25), so only the anchor outside the database can tell.
    with tampering(db) as (conn, _):
        conn.execute(EVENTS.delete().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq > 25))
        conn.execute(HEADS.update().where(HEADS.c.tenant_id == tenant).values(seq=25, last_hash=hashes[25]))
        with Session(bind=conn) as session:
            unanchored = audit_verify.verify_tenant(session, tenant, None)
            log = audit_anchor.read(cli.anchor_file, KEY.encode())
            anchored = audit_verify.verify_tenant(session, tenant, log.of(tenant))
    assert unanchored.ok  # without the anchor the truncation would pass
    assert not anchored.ok and anchored.bad_seq == 26 and "seq 26..30 are missing" in anchored.problem

    # A forged anchor line (right shape, wrong key) is named, and the verify fails on it.
    forged = audit_anchor.sign(b"not-the-key-at-all-0000", tenant, 31, "f" * 64)
    audit_anchor.append(cli.anchor_file, [forged])
    code, out, _ = cli("audit", "verify", "--tenant", tenant)
    assert code == 1 and "signed with another key" in out and f"tenant {tenant}: ok" in out, out


@BOTH
def test_ed25519_anchors_check_with_the_public_key_and_refuse_another_key(
    db: SeededDb, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # keygen: a new 0600 PEM file, never overwritten; it prints the public key, which public-key repeats.
    key_file = tmp_path / "keys" / "anchor-signing.pem"
    key_file.parent.mkdir()
    code, public, err = cli("audit", "keygen", "--out", str(key_file))
    assert code == 0 and len(base64.b64decode(public.strip())) == 32 and "mode 0600" in err, err
    assert key_file.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" not in public + err
    assert cli("audit", "keygen", "--out", str(key_file))[0] == 2  # the key stays as it was
    assert cli("audit", "public-key", "--key-file", str(key_file))[1] == public
    monkeypatch.setenv("FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    assert cli("audit", "public-key")[1] == public
    verifier = anchor_keys.Keys(public=anchor_keys.load_public_key(public.strip()))

    # An anchor line from before Ed25519 (HMAC only) stays good; new ones carry both signatures.
    tenant, hashes = seed_trail(db, 30)
    audit_anchor.append(cli.anchor_file, [audit_anchor.sign(KEY.encode(), tenant, 20, hashes[20])])
    code, out, _ = cli("audit", "anchor", "--tenant", tenant)
    assert code == 0 and f"tenant {tenant}: seq 30" in out, out
    line = json.loads(cli.anchor_file.read_text().splitlines()[-1])
    assert line["sig"] and line["ed25519_sig"] and line["ed25519_key_id"] == anchor_keys.public_key_id(
        verifier.public  # type: ignore[arg-type]
    )
    assert key_file.read_text() not in cli.anchor_file.read_text()
    code, out, _ = cli("audit", "verify", "--tenant", tenant)
    assert code == 0 and "note:" not in out, out
    # With the public key alone: the new anchor checks, the HMAC-only one cannot be.
    by_public = audit_anchor.read(cli.anchor_file, verifier)
    assert [a.seq for a in by_public.of(tenant)] == [30]
    assert by_public.problems == [
        f"line 1 of {cli.anchor_file} has no Ed25519 signature (tenant {tenant}, seq 20)"
    ]

    # Someone who can write the database and the file, but has not the signing key: the chain is
    # rewritten from seq 10 and its new head anchored with another Ed25519 key.
    other = anchor_keys.Keys(signer=anchor_keys.Ed25519PrivateKey.generate())
    with tampering(db) as (conn, session):
        rows = conn.execute(
            EVENTS.select()
            .where((EVENTS.c.tenant_id == tenant) & (EVENTS.c.seq >= 10))
            .order_by(EVENTS.c.seq)
        ).all()
        prev = hashes[9]
        for r in rows:
            fields = {**r._mapping, "reason": "rewritten" if r.seq == 10 else r.reason, "prev_hash": prev}
            prev = audit._digest(prev, cast(AuditEvent, SimpleNamespace(**fields)))
            changed = {"reason": fields["reason"], "prev_hash": fields["prev_hash"], "hash": prev}
            conn.execute(EVENTS.update().where(EVENTS.c.id == r.id).values(**changed))
        conn.execute(HEADS.update().where(HEADS.c.tenant_id == tenant).values(last_hash=prev))
        forged = tmp_path / "forged.jsonl"
        audit_anchor.append(forged, [audit_anchor.sign(other, tenant, 30, prev)])
        for keys in (verifier, audit_anchor.configured(get_settings())[1]):  # type: ignore[index]
            log = audit_anchor.read(forged, keys)
            assert not log.of(tenant) and "signed with another Ed25519 key" in log.problems[0], log.problems
            anchors = audit_anchor.read(cli.anchor_file, keys).of(tenant)
            report = audit_verify.verify_tenant(session, tenant, anchors)
            assert not report.ok and report.bad_seq is not None and report.bad_seq <= 30, report.summary
    audit_anchor.append(cli.anchor_file, forged.read_text().splitlines())
    code, out, _ = cli("audit", "verify", "--tenant", tenant)
    assert code == 1 and "signed with another Ed25519 key" in out, out


def test_a_signing_key_file_that_cannot_be_used_is_refused(tmp_path: Path) -> None:
    missing, garbage = tmp_path / "missing.pem", tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for path, why in ((missing, "cannot be read"), (garbage, "does not hold an unencrypted PEM private key")):
        with pytest.raises(ValidationError, match=f"FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE: .*{why}"):
            Settings(  # type: ignore[call-arg]
                _env_file=None,
                environment="production",
                audit_anchor_file=str(tmp_path / "a.jsonl"),
                audit_anchor_signing_key_file=str(path),
            )
    good = tmp_path / "good.pem"
    anchor_keys.write_private_key(good)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, audit_anchor_file=str(tmp_path / "a.jsonl"), audit_anchor_signing_key_file=str(good)
    )
    where = audit_anchor.configured(settings)
    assert where is not None and where[1].hmac is None and where[1].signer is not None
    assert good.read_text() not in repr(where) + repr(settings)


@BOTH
def test_anchoring_refuses_a_broken_chain(db: SeededDb, cli: Cli) -> None:
    tenant, _ = seed_trail(db, 12)
    _force(db, tenant, 5, reason="changed before anyone anchored")
    code, out, _ = cli("audit", "anchor", "--tenant", tenant)
    assert code == 1 and "NOT anchored" in out and "seq 5" in out, out
    assert not cli.anchor_file.exists() or tenant not in cli.anchor_file.read_text()


@PG
def test_postgres_refuses_update_delete_and_truncate(db: SeededDb) -> None:
    tenant, _ = seed_trail(db, 5, start=utcnow() - timedelta(days=400))
    young, _ = seed_trail(db, 3)
    statements = [
        f"UPDATE audit_event SET reason = 'x' WHERE tenant_id = '{tenant}' AND seq = 2",
        f"DELETE FROM audit_event WHERE tenant_id = '{tenant}' AND seq = 5",  # old, but not a purge
        f"DELETE FROM audit_event WHERE tenant_id = '{young}'",
        "TRUNCATE audit_event",
    ]
    for sql in statements:
        with db.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
    with db.engine.connect() as conn:  # a purge's transaction may remove old rows, never young ones
        trans = conn.begin()
        conn.execute(text("SET LOCAL frontdesk.audit_purge = 'on'"))
        deleted = conn.execute(text(f"DELETE FROM audit_event WHERE tenant_id = '{tenant}' AND seq = 1"))
        assert deleted.rowcount == 1
        trans.rollback()
    with db.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text("SET LOCAL frontdesk.audit_purge = 'on'"))
        conn.execute(text(f"DELETE FROM audit_event WHERE tenant_id = '{young}'"))
    with db.engine.connect() as conn:
        assert (
            conn.execute(
                text(f"SELECT count(*) FROM audit_event WHERE tenant_id IN ('{tenant}', '{young}')")
            ).scalar()
            == 8
        )


@BOTH
def test_purge_keeps_183_days_and_the_chain_verifiable(db: SeededDb, cli: Cli) -> None:
    now = utcnow()
    tenant, hashes = seed_trail(
        db, 20, start=now - timedelta(days=400), step=86400 * 10
    )  # day 390 .. 200 ago
    young = now - timedelta(days=182)
    code, _, err = cli("audit", "purge", "--tenant", tenant, "--before", young.date().isoformat())
    assert code == 2 and "younger than 183 days cannot be purged" in err, err

    assert cli("audit", "anchor", "--tenant", tenant)[0] == 0  # seq 20 is anchored before the purge
    cut = (now - timedelta(days=300)).date()
    code, out, err = cli("audit", "purge", "--tenant", tenant, "--before", cut.isoformat())
    assert code == 0, err
    with Session(db.engine) as session:
        remaining = session.execute(
            EVENTS.select().where(EVENTS.c.tenant_id == tenant).order_by(EVENTS.c.seq)
        ).all()
        report = audit_verify.verify_tenant(session, tenant, None)
    removed = 20 - (len(remaining) - 1)
    assert f"{removed} event(s) up to seq {removed} purged" in out, out
    assert all(
        r.at.replace(tzinfo=None) >= datetime.combine(cut, datetime.min.time()) for r in remaining[:-1]
    )
    assert (
        remaining[-1].action == "audit.purged"
        and json.loads(remaining[-1].data_json)["through_hash"] == hashes[removed]
    )
    assert report.ok and report.start_seq == removed and report.checked == len(remaining), report.summary
    purges = [a for a in audit_anchor.read(cli.anchor_file, KEY.encode()).of(tenant) if a.kind == "purge"]
    assert [(a.seq, a.hash) for a in purges] == [(removed, hashes[removed])]
    code, out, _ = cli("audit", "verify", "--tenant", tenant)
    assert code == 0 and f"from seq {removed + 1} (older rows purged)" in out, out


@BOTH
def test_a_purge_record_written_without_the_key_is_not_believed(db: SeededDb, cli: Cli) -> None:
    """Young rows deleted past the trigger, then an `audit.purged` event appended to cover it: the
    chain is whole from there, but the anchored rows it claims were purged have no signed purge."""
    tenant, hashes = seed_trail(db, 10)
    assert cli("audit", "anchor", "--tenant", tenant)[0] == 0
    with tampering(db) as (conn, session):
        conn.execute(EVENTS.delete().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq <= 6))
        data = {"through_seq": 6, "through_hash": hashes[6], "deleted": 6}
        fake = {"tenant_id": tenant, "seq": 11, "task_id": None, "actor": "cli:root", "action": "audit.purged",
                "subject": "audit:..6", "reason": "retention", "data_json": json.dumps(data, sort_keys=True),
                "at": utcnow(), "prev_hash": hashes[10]}  # fmt: skip
        fake["hash"] = audit._digest(hashes[10], cast(AuditEvent, SimpleNamespace(**fake)))
        conn.execute(insert(EVENTS).values(**fake))
        conn.execute(HEADS.update().where(HEADS.c.tenant_id == tenant).values(seq=11, last_hash=fake["hash"]))
        anchors = audit_anchor.read(cli.anchor_file, KEY.encode()).of(tenant)
        assert audit_verify.verify_tenant(session, tenant, None).ok  # the chain alone is fooled
        report = audit_verify.verify_tenant(session, tenant, anchors)
    assert not report.ok and report.bad_seq == 6 and "no signed purge record" in report.problem, (
        report.summary
    )


# --- 100,000 events ------------------------------------------------------------------------------


@BOTH
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tampering_with_a_100k_event_trail_is_detected_and_located(db: SeededDb) -> None:
    began = time.monotonic()
    n = 100_000
    tenant, h = seed_trail(db, n)
    seeded = time.monotonic() - began
    anchors = anchors_at(tenant, h, [*range(10_000, n + 1, 10_000)])

    def check(tamper: Any) -> audit_verify.Report:
        with tampering(db) as (conn, session):
            tamper(conn)
            return audit_verify.verify_tenant(session, tenant, anchors)

    def where(seq: int) -> Any:
        return (EVENTS.c.tenant_id == tenant) & (EVENTS.c.seq == seq)

    clean = check(lambda conn: None)
    assert clean.ok and clean.checked == n and clean.anchors_checked == 10, clean.summary

    edited = check(lambda conn: conn.execute(EVENTS.update().where(where(50_000)).values(reason="edited")))
    assert not edited.ok and edited.bad_seq == 50_000 and "edited" in edited.problem

    deleted = check(lambda conn: conn.execute(EVENTS.delete().where(where(30_000))))
    assert not deleted.ok and deleted.bad_seq == 30_000 and "missing" in deleted.problem

    def reorder(conn: Connection) -> None:  # two neighbours trade places
        conn.execute(EVENTS.update().where(where(70_000)).values(seq=-1))
        conn.execute(EVENTS.update().where(where(70_001)).values(seq=70_000))
        conn.execute(EVENTS.update().where(where(-1)).values(seq=70_001))

    reordered = check(reorder)
    assert not reordered.ok and reordered.bad_seq == 70_000 and "reordered" in reordered.problem

    def truncate(conn: Connection) -> None:  # the newest 10 go, and the head is set back
        conn.execute(EVENTS.delete().where((EVENTS.c.tenant_id == tenant) & (EVENTS.c.seq > n - 10)))
        conn.execute(
            HEADS.update().where(HEADS.c.tenant_id == tenant).values(seq=n - 10, last_hash=h[n - 10])
        )

    truncated = check(truncate)
    assert (
        not truncated.ok
        and truncated.bad_seq == n - 9
        and f"seq {n - 9}..{n} are missing" in truncated.problem
    )

    def truncate_only(conn: Connection) -> None:  # the head left as it was
        conn.execute(EVENTS.delete().where((EVENTS.c.tenant_id == tenant) & (EVENTS.c.seq > n - 3)))

    tail = check(truncate_only)
    assert not tail.ok and tail.bad_seq == n - 2

    def rewrite(conn: Connection) -> None:  # edit seq 95,000 and re-chain everything after it
        rows = conn.execute(
            EVENTS.select()
            .where((EVENTS.c.tenant_id == tenant) & (EVENTS.c.seq >= 95_000))
            .order_by(EVENTS.c.seq)
        ).all()
        prev, updates = h[94_999], []
        for r in rows:
            fields = {**r._mapping, "reason": "rewritten" if r.seq == 95_000 else r.reason, "prev_hash": prev}
            prev = audit._digest(prev, cast(AuditEvent, SimpleNamespace(**fields)))
            updates.append(
                {"k": r.id, "reason": fields["reason"], "prev_hash": fields["prev_hash"], "hash": prev}
            )
        conn.execute(
            text(
                "UPDATE audit_event SET reason = :reason, prev_hash = :prev_hash, hash = :hash WHERE id = :k"
            ),
            updates,
        )
        conn.execute(HEADS.update().where(HEADS.c.tenant_id == tenant).values(last_hash=prev))

    rewritten = check(rewrite)
    assert (
        not rewritten.ok
        and rewritten.bad_seq == n
        and "rewritten somewhere in seq 90001..100000" in rewritten.problem
    )
    elapsed = time.monotonic() - began
    print(f"{db.url.split(':')[0]}: seeded {n} events in {seeded:.1f} s; all cases in {elapsed:.1f} s")
    assert elapsed < 90


@BOTH
async def test_the_api_process_anchors_the_heads_that_moved(db: SeededDb, tmp_path: Path) -> None:
    tenant, hashes = seed_trail(db, 8)
    path = tmp_path / "anchors.jsonl"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]  # pydantic-settings' init keyword
        database_url=db.url,
        state_dir=tmp_path,
        audit_anchor_file=str(path),
        audit_anchor_key=KEY,  # type: ignore[arg-type]  # coerced to SecretStr
        audit_anchor_interval_seconds=0.05,
    )
    async with audit_anchor.periodic(settings, db.engine):
        for _ in range(200):
            log = audit_anchor.read(path, KEY.encode())
            if log.of(tenant):
                break
            await asyncio.sleep(0.05)
        with session_scope(db.engine) as session:
            audit.record(session, tenant_id=tenant, actor="t", action="test.after")
        for _ in range(200):
            newest = audit_anchor.read(path, KEY.encode()).newest(tenant)
            if newest and newest.seq == 9:
                break
            await asyncio.sleep(0.05)
    log = audit_anchor.read(path, KEY.encode())
    assert [a.seq for a in log.of(tenant)] == [8, 9] and log.of(tenant)[0].hash == hashes[8]
    assert not log.problems


def test_an_anchor_file_needs_a_key(tmp_path: Path) -> None:
    for key in ("", "short"):
        with pytest.raises(ValidationError, match="FRONTDESK_AUDIT_ANCHOR_KEY is missing or shorter"):
            Settings(_env_file=None, audit_anchor_file=str(tmp_path / "a.jsonl"), audit_anchor_key=key)  # type: ignore[call-arg, arg-type]
    settings = Settings(_env_file=None, audit_anchor_file="x", audit_anchor_key=KEY)  # type: ignore[call-arg, arg-type]
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())


@BOTH
def test_anchoring_signs_a_purge_made_before_it_and_refuses_an_unsigned_one(
    db: SeededDb, tmp_path: Path
) -> None:
    now = utcnow()
    tenant, hashes = seed_trail(db, 10, start=now - timedelta(days=400), step=86400)
    with session_scope(db.engine) as session:  # purged while anchoring was off
        done = audit_retention.purge(session, tenant, now - timedelta(days=395), "test")
    assert done.deleted == 4 and done.through_hash == hashes[4]
    path = tmp_path / "anchors.jsonl"
    anchorer = audit_anchor.Anchorer(db.engine, str(path), KEY.encode())
    [result] = anchorer.run(tenant)
    assert result.written and result.seq == 11, result
    anchors = audit_anchor.read(path, KEY.encode()).of(tenant)
    assert [(a.kind, a.seq) for a in anchors] == [("purge", 4), ("head", 11)]
    with Session(db.engine) as session:
        assert audit_verify.verify_tenant(session, tenant, anchors).ok

    # Later, young rows vanish behind an audit.purged event nobody signed: not anchored.
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(EVENTS.delete().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq <= 8))
        last = conn.execute(EVENTS.select().where(EVENTS.c.tenant_id == tenant, EVENTS.c.seq == 11)).one()
        data = {"through_seq": 8, "through_hash": hashes[8], "deleted": 4}
        fake = {"tenant_id": tenant, "seq": 12, "task_id": None, "actor": "cli:root", "action": "audit.purged",
                "subject": "audit:..8", "reason": "retention", "data_json": json.dumps(data, sort_keys=True),
                "at": utcnow(), "prev_hash": last.hash}  # fmt: skip
        fake["hash"] = audit._digest(last.hash, cast(AuditEvent, SimpleNamespace(**fake)))
        conn.execute(insert(EVENTS).values(**fake))
        conn.execute(HEADS.update().where(HEADS.c.tenant_id == tenant).values(seq=12, last_hash=fake["hash"]))
    [result] = anchorer.run(tenant)
    assert not result.written and "no signed purge record" in result.problem, result
