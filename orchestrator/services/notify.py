"""Notifications: an outbox table written in the caller's transaction, a dispatcher that delivers it.

    enqueue(session, …)          insert-if-missing on `dedupe_key` (a retried activity notifies once)
    enqueue_checkpoint(session, cp, event="opened")   the checkpoint payload, ready-made
    Dispatcher(engine, notifier) claims pending rows, sends them, marks them sent / retries / failed
    Notifier                     WebhookNotifier (signed JSON POST) or LogNotifier (no URL configured)

Delivery is at least once: a row is claimed with a conditional UPDATE, so two dispatchers never
send it at the same time; if a dispatcher dies mid-send its lease expires and another retries it.
Receivers de-duplicate on the notification `id`.

The schema has no "next attempt" column, so `sent_at` carries it while a row is `pending`: NULL
means "due now", a time means "not before" (the retry backoff, or the lease of a dispatcher that
has claimed the row). Once `sent`, it is the delivery time; once `failed`, NULL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import httpx
from sqlalchemy import or_, update
from sqlalchemy.engine import CursorResult, Engine
from sqlmodel import Session, col, select

from orchestrator.db import session_scope
from orchestrator.models import Checkpoint, NotificationOutbox, as_utc, utcnow
from orchestrator.services.switches import insert_missing
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Frontdesk-Signature"
RECIPIENT = re.compile(r"^(role|user):[A-Za-z0-9_.@\-]{1,120}$")


class NotifyError(Exception):
    """A delivery failed; the dispatcher records the message and retries with backoff."""


# --- writing the outbox ---------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    tenant_id: str,
    kind: str,
    recipients: list[str],
    payload: dict[str, Any],
    dedupe_key: str,
) -> bool:
    """Add a notification in the caller's transaction; a second call with the same `dedupe_key` is a
    no-op. Recipients are `role:<role>` or `user:<user id>`. Returns True when the row is new."""
    if not recipients or not all(isinstance(r, str) and RECIPIENT.match(r) for r in recipients):
        raise ValueError(
            f"recipients must be non-empty `role:<name>` / `user:<id>` strings, got {recipients!r}"
        )
    if not kind or len(kind) > 60:
        raise ValueError("kind must be 1 to 60 characters")
    if not dedupe_key or len(dedupe_key) > 200:
        raise ValueError("dedupe_key must be 1 to 200 characters")
    values = {
        "tenant_id": tenant_id,
        "kind": kind,
        "recipients": ",".join(dict.fromkeys(recipients)),
        "payload_json": json.dumps(payload, sort_keys=True, default=str),
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "created_at": utcnow(),
    }
    return insert_missing(session, NotificationOutbox.__table__, values, ["dedupe_key"])  # type: ignore[attr-defined]  # SQLModel does not declare __table__


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return as_utc(at).isoformat()


def checkpoint_recipients(cp: Checkpoint) -> list[str]:
    roles = [cp.assignee_role, *(r for r in cp.extra_roles.split(",") if r.strip())]
    users = [u for u in cp.named_approvers.split(",") if u.strip()]
    return [*(f"role:{r.strip()}" for r in roles), *(f"user:{u.strip()}" for u in users)]


def checkpoint_payload(cp: Checkpoint, *, event: str) -> dict[str, Any]:
    """What an assignee needs to act, and no tool arguments (they may hold personal data): the
    checkpoint is one click away at `link`, behind the API's authorization."""
    return {
        "event": event,
        "checkpoint_id": cp.id,
        "task_id": cp.task_id,
        "tenant_id": cp.tenant_id,
        "kind": cp.kind,
        "step": cp.step,
        "tool": cp.tool,
        "assignee_role": cp.assignee_role,
        "extra_roles": [r for r in cp.extra_roles.split(",") if r],
        "named_approvers": [u for u in cp.named_approvers.split(",") if u],
        "approvers_required": cp.approvers_required,
        "escalation_level": cp.escalation_level,
        "due_at": _iso(cp.due_at),
        "reason": cp.reason,
        "link": f"/api/checkpoints/{cp.id}",
    }


def enqueue_checkpoint(
    session: Session, cp: Checkpoint, *, event: str = "opened", dedupe_key: str | None = None
) -> bool:
    """Notify a checkpoint's assignees (`event`: opened | escalated | reassigned | …).

    The default key is `checkpoint.<event>:<id>:<escalation level>`: one notice per checkpoint and
    level however often the activity retries. Pass `dedupe_key` for events that repeat at one level
    (e.g. each reassignment)."""
    kind = f"checkpoint.{event}"
    return enqueue(
        session,
        tenant_id=cp.tenant_id,
        kind=kind,
        recipients=checkpoint_recipients(cp),
        payload=checkpoint_payload(cp, event=event),
        dedupe_key=dedupe_key or f"{kind}:{cp.id}:{cp.escalation_level}",
    )


# --- notifiers -----------------------------------------------------------------------------------


class Notifier(Protocol):
    async def send(self, notification: NotificationOutbox) -> None:
        """Deliver or raise; returning means delivered."""


def webhook_body(notification: NotificationOutbox) -> bytes:
    return json.dumps(
        {
            "id": notification.id,
            "tenant": notification.tenant_id,
            "kind": notification.kind,
            "recipients": [r for r in notification.recipients.split(",") if r],
            "payload": json.loads(notification.payload_json),
            "created_at": _iso(notification.created_at),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does the `X-Frontdesk-Signature` header match this raw body?"""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


class WebhookNotifier:
    """POSTs each notification as JSON, signed with HMAC-SHA256 of the raw body; 2xx means sent."""

    def __init__(
        self,
        url: str,
        secret: str,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s), got {url!r}")
        if not secret:
            raise ValueError("a webhook needs a signing secret (FRONTDESK_NOTIFY_WEBHOOK_SECRET)")
        self.url, self._secret, self._transport, self._timeout = url, secret, transport, timeout

    async def send(self, notification: NotificationOutbox) -> None:
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "frontdesk-notifier",
            "X-Frontdesk-Delivery": str(notification.id),
            "X-Frontdesk-Event": notification.kind,
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise NotifyError(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")


class LogNotifier:
    """No webhook configured: log that a notification is due (kind and recipients, never the
    payload) and count it as sent."""

    async def send(self, notification: NotificationOutbox) -> None:
        log.info(
            "notification %s %s for %s (tenant %s)",
            notification.id,
            notification.kind,
            notification.recipients,
            notification.tenant_id,
        )


def build_notifier(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Notifier:
    if settings.notify_webhook_url:
        return WebhookNotifier(settings.notify_webhook_url, settings.notify_webhook_secret, transport)
    return LogNotifier()


# --- the dispatcher ------------------------------------------------------------------------------


class Dispatcher:
    """Delivers the outbox. Safe to run in any number of processes at once."""

    def __init__(
        self,
        engine: Engine,
        notifier: Notifier,
        *,
        batch: int = 50,
        max_attempts: int = 8,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 3600.0,
        lease_seconds: float = 120.0,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if batch < 1 or max_attempts < 1 or concurrency < 1:
            raise ValueError("batch, max_attempts and concurrency must be at least 1")
        self.engine, self.notifier, self.batch, self.max_attempts = engine, notifier, batch, max_attempts
        self.backoff_seconds, self.max_backoff_seconds = backoff_seconds, max_backoff_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency, self.clock = concurrency, clock
        self._claimed = 0

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Dispatcher:
        return cls(engine, build_notifier(settings), max_attempts=settings.notify_max_attempts)

    def backoff(self, attempts: int) -> timedelta:
        """Delay after the `attempts`-th failed try: backoff_seconds doubling, capped."""
        seconds = self.backoff_seconds * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.max_backoff_seconds))

    async def dispatch_once(self) -> int:
        """Claim up to `batch` due notifications, send them; return how many were delivered."""
        due = await asyncio.to_thread(self._due)
        gate = asyncio.Semaphore(self.concurrency)
        self._claimed = 0

        async def deliver(row_id: int, attempts: int) -> bool:
            async with gate:
                row = await asyncio.to_thread(self._claim, row_id, attempts)
                if row is None:
                    return False  # another dispatcher has it
                self._claimed += 1
                try:
                    await self.notifier.send(row)
                except Exception as exc:
                    await asyncio.to_thread(self._failed, row, exc)
                    return False
                await asyncio.to_thread(self._sent, row)
                return True

        results = await asyncio.gather(*(deliver(row_id, attempts) for row_id, attempts in due))
        return sum(results)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Dispatch until `stop` is set: straight again after a full batch, else every `interval` s."""
        while not stop.is_set():
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("notification dispatch failed; retrying in %.1f s", interval)
                self._claimed = 0
            if self._claimed >= self.batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    # -- database steps (run in a thread) ----------------------------------------------------------

    def _due_filter(self, now: datetime) -> Any:
        return or_(col(NotificationOutbox.sent_at).is_(None), col(NotificationOutbox.sent_at) <= now)

    def _due(self) -> list[tuple[int, int]]:
        now = self.clock()
        pending = col(NotificationOutbox.status) == "pending"
        with session_scope(self.engine) as session:
            # A dispatcher that died during the last allowed attempt leaves the row pending; its
            # lease has run out, so it has failed.
            session.execute(
                update(NotificationOutbox)
                .where(pending, col(NotificationOutbox.attempts) >= self.max_attempts, self._due_filter(now))
                .values(status="failed", sent_at=None, last_error="no delivery confirmed within the lease")
            )
            rows = session.exec(
                select(NotificationOutbox.id, NotificationOutbox.attempts)
                .where(pending, self._due_filter(now))
                .order_by(col(NotificationOutbox.id))
                .limit(self.batch)
            ).all()
        return [(int(row_id), attempts) for row_id, attempts in rows if row_id is not None]

    def _claim(self, row_id: int, attempts: int) -> NotificationOutbox | None:
        now = self.clock()
        with session_scope(self.engine) as session:
            claimed = session.execute(
                update(NotificationOutbox)
                .where(
                    col(NotificationOutbox.id) == row_id,
                    col(NotificationOutbox.status) == "pending",
                    col(NotificationOutbox.attempts) == attempts,
                    self._due_filter(now),
                )
                .values(attempts=attempts + 1, sent_at=now + self.lease)
            )
            if cast("CursorResult[Any]", claimed).rowcount != 1:
                return None
            return session.get(NotificationOutbox, row_id)

    def _finish(self, row: NotificationOutbox, **values: Any) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(NotificationOutbox)
                .where(
                    col(NotificationOutbox.id) == row.id,
                    col(NotificationOutbox.status) == "pending",
                    col(NotificationOutbox.attempts) == row.attempts,  # still our claim
                )
                .values(**values)
            )

    def _sent(self, row: NotificationOutbox) -> None:
        self._finish(row, status="sent", sent_at=self.clock(), last_error=None)

    def _failed(self, row: NotificationOutbox, exc: Exception) -> None:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if row.attempts >= self.max_attempts:
            log.warning(
                "notification %s (%s) failed after %d attempts: %s", row.id, row.kind, row.attempts, error
            )
            self._finish(row, status="failed", sent_at=None, last_error=error)
        else:
            self._finish(row, sent_at=self.clock() + self.backoff(row.attempts), last_error=error)
