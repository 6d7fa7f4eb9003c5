"""The database layer on SQLite and PostgreSQL: migrations, pragmas, the audit chain."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel, select

from orchestrator import audit
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import ensure_tenant
from orchestrator.models import AuditEvent, Tenant

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@BOTH
def test_migrations_match_models_and_rerun_keeps_data(db: Any) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
    with session_scope(db.engine) as session:
        before = session.exec(select(Tenant)).all()
    migrate(db.url)  # upgrading an up-to-date database is a no-op that keeps every row
    with session_scope(db.engine) as session:
        assert [t.id for t in session.exec(select(Tenant)).all()] == [t.id for t in before]
        assert session.get(Tenant, "acme") is not None


def test_sqlite_pragmas(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    engine.dispose()


@BOTH
def test_audit_chain_stays_linear_under_concurrent_writers(db: Any) -> None:
    tenant = f"chain{threading.get_ident() % 10000}{db.url[:6]}".replace(":", "")
    with session_scope(db.engine) as session:
        ensure_tenant(session, tenant, "chain test")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with session_scope(db.engine) as session:
                    audit.record(session, tenant_id=tenant, actor=f"w{n}", action="test.event", reason=str(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_scope(db.engine) as session:
        seqs = [
            e.seq
            for e in session.exec(
                select(AuditEvent).where(AuditEvent.tenant_id == tenant).order_by(AuditEvent.seq)
            )
        ]
        ok, why = audit.verify_chain(session, tenant)
    assert seqs == list(range(1, 6 * 15 + 2))  # + tenant.created
    assert ok, why


@BOTH
def test_audit_chain_detects_tampering(db: Any) -> None:
    tenant = "tamper" + db.url[:5].replace(":", "")
    with session_scope(db.engine) as session:
        ensure_tenant(session, tenant, "tamper test")
        for i in range(3):
            audit.record(session, tenant_id=tenant, actor="t", action="test.event", reason=str(i))
    with session_scope(db.engine) as session:
        if db.url.startswith("postgresql"):  # past migration 0010's trigger, as only a superuser can
            session.execute(text("SET LOCAL session_replication_role = replica"))
        event = session.exec(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant, AuditEvent.seq == 2)
        ).one()
        event.reason = "rewritten history"
        session.add(event)
    with session_scope(db.engine) as session:
        ok, why = audit.verify_chain(session, tenant)
    assert not ok and "seq 2" in why
