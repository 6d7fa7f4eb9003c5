"""Web sign-in: sessions kept server-side, keyed by the sha256 of a random cookie value.

    sign_in(email, password)  -> (cookie value, WebSession) or None
    lookup(cookie value)      -> the live session, or None (unknown, expired, revoked, or its
                                 tenant disabled by `frontdesk tenant revoke`)
    revoke(session)           -> logout: the cookie stops working at once, everywhere
    switch_tenant(session, t) -> work in another tenant the person is a member of

The cookie is `__Host-frontdesk_session`: Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain,
so no other host, path or script can set or read it. Every state-changing form also carries the
session's CSRF token (SameSite alone does not protect against other ports of the same host).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.models import Membership, Tenant, User, WebSession, as_utc, utcnow
from orchestrator.security import hash_password, hash_token, needs_rehash, verify_password

COOKIE = "__Host-frontdesk_session"
LIFETIME = timedelta(hours=12)  # absolute: a stolen cookie is useless after this
IDLE = timedelta(hours=2)  # sliding: unused for this long, the session ends
_TOUCH_EVERY = timedelta(minutes=1)


def tenants_of(session: Session, user_id: str) -> list[Tenant]:
    """The tenants the person can work in: a member, and the tenant not disabled."""
    ids = set(session.exec(select(Membership.tenant_id).where(Membership.user_id == user_id)).all())
    tenants = (session.get(Tenant, i) for i in ids)
    return sorted((t for t in tenants if t is not None and t.disabled_at is None), key=lambda t: t.id)


def _tenant_enabled(session: Session, tenant_id: str) -> bool:
    tenant = session.get(Tenant, tenant_id)
    return tenant is not None and tenant.disabled_at is None


def sign_in(
    session: Session, email: str, password: str, user_agent: str = ""
) -> tuple[str, WebSession] | None:
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if not verify_password(password, user.password_hash if user else None) or user is None:
        return None
    tenants = tenants_of(session, user.id)
    if not tenants:
        return None  # a person with no role in an enabled tenant has nothing to sign in to
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    cookie = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        id=hash_token(cookie),
        user_id=user.id,
        tenant_id=tenants[0].id,
        csrf_token=secrets.token_urlsafe(32),
        user_agent=user_agent[:300],
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(row)
    _purge(session, user.id, now)
    audit.record(session, tenant_id=row.tenant_id, actor=f"user:{user.id}", action="web.signed_in")
    session.commit()
    return cookie, row


def _purge(session: Session, user_id: str, now: datetime) -> None:
    """Forget this person's sessions that ended more than a day ago (no row lives for ever)."""
    cutoff = now - timedelta(days=1)
    session.exec(
        delete(WebSession).where(
            col(WebSession.user_id) == user_id,
            or_(col(WebSession.expires_at) < cutoff, col(WebSession.revoked_at) < cutoff),
        )
    )


def lookup(session: Session, cookie: str | None) -> WebSession | None:
    if not cookie or len(cookie) > 200:
        return None
    row = session.get(WebSession, hash_token(cookie))
    if row is None or row.revoked_at is not None or not _tenant_enabled(session, row.tenant_id):
        return None
    now = utcnow()
    if as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + IDLE <= now:
        return None
    if as_utc(row.last_seen_at) + _TOUCH_EVERY <= now:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return row


def revoke(session: Session, row: WebSession) -> None:
    row.revoked_at = utcnow()
    session.add(row)
    audit.record(session, tenant_id=row.tenant_id, actor=f"user:{row.user_id}", action="web.signed_out")
    session.commit()


def switch_tenant(session: Session, row: WebSession, tenant_id: str) -> bool:
    member = session.exec(
        select(Membership).where(Membership.user_id == row.user_id, Membership.tenant_id == tenant_id)
    ).first()
    if member is None or not _tenant_enabled(session, tenant_id):
        return False
    row.tenant_id = tenant_id
    row.csrf_token = secrets.token_urlsafe(32)  # a token seen in one tenant is not good in another
    session.add(row)
    audit.record(session, tenant_id=tenant_id, actor=f"user:{row.user_id}", action="web.tenant_switched")
    session.commit()
    return True


def csrf_ok_token(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


def open_sessions(session: Session, user_id: str) -> list[WebSession]:
    now = utcnow()
    rows = session.exec(
        select(WebSession).where(col(WebSession.user_id) == user_id, col(WebSession.revoked_at).is_(None))
    ).all()
    live = [r for r in rows if as_utc(r.expires_at) > now and as_utc(r.last_seen_at) + IDLE > now]
    return sorted(live, key=lambda r: as_utc(r.created_at), reverse=True)


def revoke_all(session: Session, user_id: str, tenant_id: str) -> int:
    rows = open_sessions(session, user_id)
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
    audit.record(
        session, tenant_id=tenant_id, actor=f"user:{user_id}", action="web.signed_out_everywhere",
        data={"sessions": len(rows)},
    )
    session.commit()
    return len(rows)
