"""Database engine and sessions: a SQLite file by default, PostgreSQL by URL.

SQLite runs in WAL mode with a busy timeout and foreign keys on, so the API and the worker
(two processes) can share one file. The schema is owned by alembic (`orchestrator/migrations`);
`migrate()` upgrades any database to head and keeps its data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from orchestrator.resources import MIGRATIONS_DIR

# SQLite stores NUMERIC as a float-ish affinity; sums are done in Decimal in Python and the
# columns are scaled to 1e-9 USD, so the driver's warning about native Decimal is noise here.
warnings.filterwarnings(
    "ignore", message=".*does \\*not\\* support Decimal objects natively.*", category=sa_exc.SAWarning
)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def migrate(url: str) -> None:
    """Upgrade the database at `url` to the newest schema (alembic head)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against the migrations this release ships.

    `newer`: the database is at a revision this release does not know, so a later release has
    migrated it. Migrations only add (expand first, drop in a later release), so the previous
    release's processes keep serving while an upgrade rolls out.
    """

    current: frozenset[str]
    heads: frozenset[str]
    known: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.current

    @property
    def at_head(self) -> bool:
        return self.current == self.heads

    @property
    def newer(self) -> bool:
        return bool(self.current) and not self.current <= self.known

    @property
    def behind(self) -> bool:
        return not self.empty and not self.at_head and not self.newer

    def describe(self) -> str:
        return ", ".join(sorted(self.current)) or "none"


@lru_cache(maxsize=1)
def _shipped_revisions() -> tuple[frozenset[str], frozenset[str]]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    return frozenset(scripts.get_heads()), frozenset(r.revision for r in scripts.walk_revisions())


def schema_state(connection: Connection) -> SchemaState:
    """The schema of the database behind `connection` against this release's migrations."""
    from alembic.runtime.migration import MigrationContext

    heads, known = _shipped_revisions()
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    return SchemaState(current=current, heads=heads, known=known)
