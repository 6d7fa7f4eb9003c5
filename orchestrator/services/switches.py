"""Kill switches: emergency stops per tenant, agent, tool, or for everything (global).

A switch is one `KillSwitch` row keyed by (scope, tenant_id, subject); flipping it updates the row,
appends a `KillSwitchEvent` and, for tenant-scoped switches, an audit event in that tenant's chain
(global switches belong to no tenant, their record is the event table). Agent and tool switches
are per tenant; their subject is the definition's name without a version (`issue_refund`), so a
switch covers every version.

`check` answers "may the next step run?" for every decision the workers make, so it reads the
(tiny) set of *active* switches once per `cache_seconds` (0.5 s) and answers from memory in
between: a flip made by another process applies to the next decision within 1 s.

After a flip, `wake_waiting_tasks` signals the tasks waiting in the switch's reach, so a paused task
resumes, or stops, at once instead of at its next recheck.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, computed_field
from sqlalchemy import Insert, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import load_only
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from orchestrator import audit, metrics
from orchestrator.contracts import SWITCHES_CHANGED_SIGNAL
from orchestrator.db import session_scope
from orchestrator.models import KillSwitch, KillSwitchEvent, Task, Tenant, as_utc, utcnow

log = logging.getLogger(__name__)
WAKE_AT_MOST = 5000  # waiting tasks signalled per flip; the rest see the flip at their own recheck
# Every process answers checks from a snapshot younger than this (cache_seconds < 1 is enforced).
CACHE_LIMIT_SECONDS = 1.0

Scope = Literal["global", "tenant", "agent", "tool"]
Mode = Literal["pause", "stop"]
SCOPES: tuple[str, ...] = get_args(Scope)
MODES: tuple[str, ...] = get_args(Mode)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,119}$")
# Which hit wins when several apply: stop before pause, then the broadest scope.
_SCOPE_RANK = {"global": 0, "tenant": 1, "agent": 2, "tool": 3}


class SwitchError(ValueError):
    """A flip that cannot be made as asked; the message says what to fix (the API answers 422)."""


class SwitchHit(BaseModel):
    """The active switch that stops or pauses a step (serializable: it crosses activity bounds)."""

    model_config = ConfigDict(frozen=True)

    scope: Scope
    subject: str  # the agent or tool name; the tenant id for a tenant switch; '' for global
    mode: Mode
    reason: str
    flipped_by: str
    flipped_at: datetime

    @computed_field  # type: ignore[prop-decorator]  # mypy rejects decorators over @property
    @property
    def message(self) -> str:
        what = self.scope if self.scope == "global" else f"{self.scope} {self.subject}"
        at = self.flipped_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"kill switch ({what}, {self.mode}): {self.reason} — flipped by {self.flipped_by} at {at}"


@dataclass(frozen=True)
class _Active:
    scope: str
    tenant_id: str
    subject: str
    mode: str
    reason: str
    flipped_by: str
    flipped_at: datetime


def _name(value: str | None) -> str | None:
    """`issue_refund@2` -> `issue_refund`: switches name definitions, not versions."""
    return value.split("@", 1)[0] if value else None


def insert_missing(session: Session, table: Table, values: dict, keys: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; True when a row was inserted.

    (RETURNING tells the two apart: PostgreSQL reports no usable rowcount for this statement.)"""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Insert = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - Frontdesk runs on SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    return session.exec(stmt.returning(*table.primary_key.columns)).first() is not None


class SwitchService:
    """Flip, check, list and audit kill switches. Thread-safe; one instance per process."""

    def __init__(self, engine: Engine, *, cache_seconds: float = 0.5) -> None:
        if not 0 <= cache_seconds < CACHE_LIMIT_SECONDS:
            raise ValueError("cache_seconds must be in [0, 1): a flip must apply within 1 s")
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._generation = 0  # bumped by every local flip, so a read begun before it is not kept
        self._active: dict[tuple[str, str, str], _Active] = {}

    # -- flipping -----------------------------------------------------------------------------------

    def flip(
        self,
        *,
        scope: str,
        tenant_id: str,
        subject: str = "",
        active: bool,
        mode: str | None = None,
        reason: str = "",
        actor: str,
    ) -> KillSwitch:
        """Turn a switch on or off (upsert), record the event and, for tenant scopes, the audit.

        `mode` defaults to `stop` when activating and to the switch's current mode when turning it
        off. Raises `SwitchError` on invalid input.
        """
        subject, reason = (subject or "").strip(), (reason or "").strip()
        self._validate(scope, tenant_id, subject, active, mode, reason, actor)
        key: dict[str, Any] = {"scope": scope, "tenant_id": tenant_id, "subject": subject}
        now = utcnow()
        with session_scope(self._engine) as session:
            if scope != "global" and session.get(Tenant, tenant_id) is None:
                raise SwitchError(f"tenant {tenant_id!r} does not exist")
            created = insert_missing(
                session,
                KillSwitch.__table__,  # type: ignore[attr-defined]  # SQLModel does not declare __table__
                {
                    **key,
                    "mode": mode or "stop",
                    "active": False,
                    "reason": "",
                    "flipped_by": actor,
                    "flipped_at": now,
                },
                ["scope", "tenant_id", "subject"],
            )
            row = session.exec(
                select(KillSwitch)
                .where(
                    KillSwitch.scope == scope,
                    KillSwitch.tenant_id == tenant_id,
                    KillSwitch.subject == subject,
                )
                .with_for_update()
            ).one()
            previous = None if created else {"active": row.active, "mode": row.mode}
            row.active, row.mode = active, mode or row.mode
            row.reason, row.flipped_by, row.flipped_at = reason, actor, now
            session.add(row)
            session.add(
                KillSwitchEvent(**key, mode=row.mode, active=active, reason=reason, flipped_by=actor, at=now)
            )
            if scope != "global":
                audit.record(
                    session,
                    tenant_id=tenant_id,
                    actor=actor,
                    action="switch.flipped",
                    subject=f"{scope}:{subject or tenant_id}",
                    reason=reason,
                    data={
                        "scope": scope,
                        "subject": subject,
                        "active": active,
                        "mode": row.mode,
                        "previous": previous,
                    },
                )
            session.flush()
        self._invalidate()
        metrics.record_switch_flip(scope, row.mode, active)
        return row

    @staticmethod
    def _validate(
        scope: str, tenant_id: str, subject: str, active: bool, mode: str | None, reason: str, actor: str
    ) -> None:
        if scope not in SCOPES:
            raise SwitchError(f"scope must be one of {', '.join(SCOPES)} (got {scope!r})")
        if mode is not None and mode not in MODES:
            raise SwitchError(f"mode must be pause or stop (got {mode!r})")
        if scope == "global":
            if tenant_id or subject:
                raise SwitchError("a global switch has no tenant and no subject")
        elif not tenant_id:
            raise SwitchError(f"a {scope} switch belongs to a tenant: give tenant_id")
        if scope == "tenant" and subject:
            raise SwitchError("a tenant switch has no subject (it covers the whole tenant)")
        if scope in ("agent", "tool"):
            if not subject:
                raise SwitchError(f"a {scope} switch needs a subject: the {scope} name, e.g. issue_refund")
            if not NAME.match(subject):
                raise SwitchError(
                    f"{scope} name {subject!r} is invalid: letters, digits, _ . - only, no @version "
                    "(a switch covers every version), at most 120 characters"
                )
        if active and not reason:
            raise SwitchError("give a reason when turning a switch on (it is shown to everyone it stops)")
        if len(reason) > 2000:
            raise SwitchError("reason is longer than 2000 characters")
        if not actor or len(actor) > 40:
            raise SwitchError("actor must be a user id of at most 40 characters")

    # -- checking -----------------------------------------------------------------------------------

    def check(self, *, tenant_id: str, agent: str | None = None, tool: str | None = None) -> SwitchHit | None:
        """The active switch that applies to this step, or None. `stop` wins over `pause`."""
        active = self._snapshot()
        keys = [("global", "", ""), ("tenant", tenant_id, "")]
        if agent:
            keys.append(("agent", tenant_id, _name(agent) or ""))
        if tool:
            keys.append(("tool", tenant_id, _name(tool) or ""))
        hits = [active[k] for k in keys if k in active and (k[0] == "global" or tenant_id)]
        if not hits:
            return None
        best = min(hits, key=lambda h: (h.mode != "stop", _SCOPE_RANK[h.scope]))
        # From a mapping: the row's scope and mode are plain strings, pydantic checks them.
        return SwitchHit.model_validate(
            {
                "scope": best.scope,
                "subject": best.subject if best.scope != "tenant" else best.tenant_id,
                "mode": best.mode,
                "reason": best.reason,
                "flipped_by": best.flipped_by,
                "flipped_at": as_utc(best.flipped_at),
            }
        )

    def _snapshot(self) -> dict[tuple[str, str, str], _Active]:
        with self._lock:
            if time.monotonic() - self._loaded_at < self._cache_seconds:
                return self._active
            generation = self._generation
        started = time.monotonic()
        with Session(self._engine) as session:
            rows = session.exec(select(KillSwitch).where(col(KillSwitch.active).is_(True))).all()
        fresh = {
            (r.scope, r.tenant_id, r.subject): _Active(
                r.scope, r.tenant_id, r.subject, r.mode, r.reason, r.flipped_by, r.flipped_at
            )
            for r in rows
        }
        with self._lock:
            # Age the snapshot from when the read began, so it is never older than cache_seconds.
            if generation == self._generation and started > self._loaded_at:
                self._active, self._loaded_at = fresh, started
            return fresh

    def _invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._loaded_at = float("-inf")

    # -- reading ------------------------------------------------------------------------------------

    def list(self, tenant_id: str, include_global: bool = True) -> list[KillSwitch]:
        """Every switch of the tenant (on and off) and, by default, the global one."""
        with Session(self._engine, expire_on_commit=False) as session:
            where = col(KillSwitch.tenant_id) == tenant_id
            if include_global:
                where = or_(where, col(KillSwitch.scope) == "global")
            rows = session.exec(select(KillSwitch).where(where)).all()
        return sorted(rows, key=lambda r: (_SCOPE_RANK.get(r.scope, 9), r.subject))

    def history(
        self, tenant_id: str, limit: int = 100, include_global: bool = True
    ) -> builtins.list[KillSwitchEvent]:  # `list` is the method above, here in the class
        """The tenant's flips (and, by default, global ones), newest first."""
        with Session(self._engine, expire_on_commit=False) as session:
            where = col(KillSwitchEvent.tenant_id) == tenant_id
            if include_global:
                where = or_(where, col(KillSwitchEvent.scope) == "global")
            query = select(KillSwitchEvent).where(where).order_by(col(KillSwitchEvent.id).desc())
            return list(session.exec(query.limit(max(1, min(limit, 1000)))).all())


async def wake_waiting_tasks(state: Any, tenant_id: str | None) -> int:
    """Signal `switches.changed` to the waiting tasks of a tenant (None: of every tenant).

    Best effort: a task that misses it re-checks the switches on its own timer. Returns how many
    signals were delivered. `state` is the process's AppState; without a Temporal client (a
    process that has none) nothing is signalled.

    The signals go out CACHE_LIMIT_SECONDS after the flip: the woken task checks the switches in a
    worker, another process whose cache may hold a snapshot read just before the flip, and would
    go back to sleep until its next recheck (minutes). Every snapshot in use by then was read
    after the flip. (Callers run this after the response, as a background task.)"""
    connect = getattr(state, "temporal_client", None)
    if connect is None:
        return 0

    def waiting() -> list[str]:
        with Session(state.engine) as session:
            # Only the id is read: `workflow_id` is made from it.
            only_id = load_only(Task.id)  # type: ignore[arg-type]  # SQLModel types Task.id as str
            query = select(Task).options(only_id).where(Task.status == "waiting")
            if tenant_id is not None:
                query = query.where(Task.tenant_id == tenant_id)
            tasks = session.exec(query.order_by(col(Task.updated_at)).limit(WAKE_AT_MOST)).all()
            return [task.workflow_id for task in tasks]

    try:
        workflow_ids = await run_in_threadpool(waiting)
        if not workflow_ids:
            return 0
        await asyncio.sleep(CACHE_LIMIT_SECONDS)
        client = await connect()
    except Exception as exc:
        log.warning("switch flipped; waiting tasks not signalled (%s), they re-check on their own", exc)
        return 0
    gate = asyncio.Semaphore(20)

    async def signal(workflow_id: str) -> bool:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).signal(SWITCHES_CHANGED_SIGNAL)
                return True
            except Exception:  # ended meanwhile, or Temporal went away: the recheck covers it
                return False

    return sum(await asyncio.gather(*(signal(w) for w in workflow_ids)))
