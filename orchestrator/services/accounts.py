"""Tenants, people and API tokens as the operator creates them: the bootstrap of an install.

`frontdesk tenant|user|token` (orchestrator/cli/accounts_cmd.py) calls these functions on the
database named in settings, before any API token exists; the demo seed builds its rows with the
same `put_*` helpers, so there is one way to create a tenant, a user, a membership or a token.

    add_tenant / list_tenants / disable_tenant
    add_user / list_people (services.people) / remove_user
    add_token / list_tokens / revoke_token

Each change is one or more audit events in the tenant's chain, in the same transaction as the
change (the audit head's lock serializes writers of one tenant). Secrets never reach
the audit trail: a password is recorded as "set", a token by its id. The functions flush but do
not commit; the caller's `session_scope` commits the change and its events together.

A disabled tenant (`disabled_at`) keeps its rows, so its history stays readable; the API and the
web sign-in refuse its tokens and sessions where they are looked up (api/deps.py, web/sessions.py).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.db import schema_state
from orchestrator.errors import Conflict, NotFound, Unprocessable
from orchestrator.models import ApiToken, Membership, Tenant, User, WebSession, new_id, utcnow
from orchestrator.policy.rules import ALL_TENANTS
from orchestrator.security import hash_password, hash_token, new_token
from orchestrator.services.people import ROLES, PersonPublic

# The operator may also grant `platform_admin`, which no tenant admin can (services.people): the
# global kill switch needs someone holding it, and the person with the database credentials is
# the only one above the tenants.
OPERATOR_ROLES: tuple[str, ...] = (*ROLES, "platform_admin")
# Lower-case letters, digits and -: the id appears in policy CSV lines (no commas, spaces or
# patterns) and in URLs; `all-tenants` is the policy files' word for every tenant.
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# No password rule existed before this command (the web sign-in form only caps its field at 1024
# characters). 12 is above NIST SP 800-63B's floor of 8; the sign-in throttle limits guessing.
MIN_PASSWORD, MAX_PASSWORD = 12, 1024


class TenantPublic(BaseModel):
    id: str
    name: str
    domain: str
    created_at: datetime
    disabled_at: datetime | None
    members: int  # people holding at least one role here


class TokenPublic(BaseModel):
    """An API token as listed: never the token or its hash."""

    id: str
    tenant_id: str
    user_id: str
    email: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class UserAdded(BaseModel):
    person: PersonPublic  # with every role held in the tenant now
    created: bool  # a new user row (else an existing person joined or gained roles)
    roles_added: list[str]
    password_set: bool
    renamed: bool


class UserRemoved(BaseModel):
    person: PersonPublic  # with the roles they held in the tenant
    tokens_revoked: int
    sessions_revoked: int


# --- checks ------------------------------------------------------------------------------------


def schema_problem(engine: Engine) -> str | None:
    """Why these commands must not run on this database yet, or None when it is at the newest schema."""
    with engine.connect() as connection:
        schema = schema_state(connection)
    if schema.at_head:
        return None
    heads = ", ".join(sorted(schema.heads))
    if schema.newer:
        return f"the database is at schema revision {schema.describe()}, newer than this release ({heads}): use the newer frontdesk"
    found = f"at schema revision {schema.describe()}" if not schema.empty else "not migrated (no Frontdesk schema)"
    return f"the database is {found}, this release needs {heads}: run `frontdesk migrate` first"


def check_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID.match(tenant_id) or tenant_id == ALL_TENANTS:
        raise Unprocessable(
            f"Tenant id {tenant_id!r} is not allowed: use 1 to 64 lower-case letters, digits and -, "
            f"starting with a letter or digit (and not {ALL_TENANTS!r})."
        )
    return tenant_id


def normalize_email(raw: str) -> str:
    # Stored lower-case: the web sign-in lowercases what is typed and matches exactly.
    email = raw.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise Unprocessable(f"{raw!r} is not an e-mail address: give one like name@example.com.")
    return email


def check_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise Unprocessable(f"Give at least one role: {', '.join(OPERATOR_ROLES)}.")
    unknown = [r for r in roles if r not in OPERATOR_ROLES]
    if unknown:
        raise Unprocessable(f"Unknown role {unknown[0]!r}: choose from {', '.join(OPERATOR_ROLES)}.")
    return sorted(set(roles))


def check_password(password: str) -> str:
    if not password:
        raise Unprocessable("The password is empty: pass a non-empty password on standard input.")
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise Unprocessable(f"The password is too long: the sign-in form takes at most {MAX_PASSWORD}.")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def get_tenant(session: Session, tenant_id: str, *, enabled: bool = False) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id!r}: `frontdesk tenant list` shows the tenants there are.")
    if enabled and tenant.disabled_at is not None:
        raise Unprocessable(f"Tenant {tenant_id!r} is disabled: nobody can work in it any more.")
    return tenant


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email)).first()


def _roles(session: Session, tenant_id: str, user_id: str) -> list[str]:
    rows = session.exec(
        select(Membership.role).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    ).all()
    return sorted(rows)


# --- rows (no audit, no checks): what the audited operations and the demo seed build on ---------


def put_tenant(session: Session, tenant_id: str, name: str, domain: str = "") -> Tenant:
    tenant = Tenant(id=tenant_id, name=name, domain=domain)
    session.add(tenant)
    session.flush()
    return tenant


def put_user(session: Session, email: str, name: str, password: str | None = None) -> tuple[User, bool]:
    """The user with this e-mail, created (with the password, if any) when missing."""
    user = find_user(session, email)
    if user is not None:
        return user, False
    user = User(email=email, name=name, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user, True


def put_roles(session: Session, tenant_id: str, user_id: str, roles: list[str]) -> list[str]:
    """Grant the roles the user does not hold in the tenant yet; return those."""
    held = set(_roles(session, tenant_id, user_id))
    added = [r for r in roles if r not in held]
    for role in added:
        session.add(Membership(tenant_id=tenant_id, user_id=user_id, role=role))
        held.add(role)
    session.flush()
    return added


def put_token(
    session: Session, user_id: str, tenant_id: str, label: str = "", token: str | None = None
) -> tuple[str, str]:
    """A token for the user in the tenant: (token id, token). A given token that exists is kept."""
    token = token or new_token()
    digest = hash_token(token)
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None:
        row = ApiToken(user_id=user_id, tenant_id=tenant_id, token_hash=digest, label=label)
        session.add(row)
        session.flush()
    return row.id, token


# --- tenants -----------------------------------------------------------------------------------


def ensure_tenant(session: Session, actor: str, tenant_id: str, name: str, domain: str = "") -> Tenant:
    """The tenant, created (and its creation audited) when missing."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = put_tenant(session, tenant_id, name, domain)
        audit.record(
            session, tenant_id=tenant_id, actor=actor, action="tenant.created", subject=tenant_id,
            data={"name": name, "domain": domain},
        )  # fmt: skip
    return tenant


def add_tenant(session: Session, actor: str, tenant_id: str, name: str, domain: str = "") -> TenantPublic:
    check_tenant_id(tenant_id)
    if not name.strip() or len(name) > 200:
        raise Unprocessable("Give the tenant a name of 1 to 200 characters (--name).")
    if session.get(Tenant, tenant_id) is not None:
        raise Conflict(f"Tenant {tenant_id!r} already exists: choose another id.")
    ensure_tenant(session, actor, tenant_id, name.strip(), domain.strip().lower())
    return _tenant_public(session, get_tenant(session, tenant_id))


def _tenant_public(session: Session, tenant: Tenant) -> TenantPublic:
    members = session.exec(
        select(func.count(func.distinct(Membership.user_id))).where(Membership.tenant_id == tenant.id)
    ).one()
    return TenantPublic(
        id=tenant.id, name=tenant.name, domain=tenant.domain, created_at=tenant.created_at,
        disabled_at=tenant.disabled_at, members=members,
    )  # fmt: skip


def list_tenants(session: Session) -> list[TenantPublic]:
    return [_tenant_public(session, t) for t in session.exec(select(Tenant).order_by(col(Tenant.id)))]


def disable_tenant(session: Session, actor: str, tenant_id: str) -> tuple[TenantPublic, bool]:
    """Disable the tenant: its tokens and sessions stop working. (tenant, changed now)."""
    tenant = get_tenant(session, tenant_id)
    if tenant.disabled_at is not None:
        return _tenant_public(session, tenant), False
    audit.record(session, tenant_id=tenant_id, actor=actor, action="tenant.disabled", subject=tenant_id)
    tenant.disabled_at = utcnow()
    session.add(tenant)
    session.flush()
    return _tenant_public(session, tenant), True


def enable_tenant(session: Session, actor: str, tenant_id: str) -> tuple[TenantPublic, int | None]:
    """Enable a disabled tenant again: (the tenant, how many web sessions were ended), the count
    None when it was not disabled (nothing changed). Its API tokens work again (they were never revoked, only refused);
    web sessions open when it was disabled stay ended, so people sign in again."""
    tenant = get_tenant(session, tenant_id)
    if tenant.disabled_at is None:
        return _tenant_public(session, tenant), None
    now = utcnow()
    stale = session.exec(
        select(WebSession).where(WebSession.tenant_id == tenant_id, col(WebSession.revoked_at).is_(None))
    ).all()
    for web in stale:
        web.revoked_at = now
        session.add(web)
    audit.record(
        session, tenant_id=tenant_id, actor=actor, action="tenant.enabled", subject=tenant_id,
        data={"disabled_at": tenant.disabled_at.isoformat(), "sessions_ended": len(stale)},
    )  # fmt: skip
    tenant.disabled_at = None
    session.add(tenant)
    session.flush()
    return _tenant_public(session, tenant), len(stale)


# --- people ------------------------------------------------------------------------------------


def add_user(
    session: Session,
    actor: str,
    tenant_id: str,
    email: str,
    roles: list[str],
    *,
    name: str | None = None,
    password: str | None = None,
) -> UserAdded:
    """Create the user (or take the existing one) and grant the roles in the tenant. The password
    is set only when one is given; it is the person's one password, in every tenant (the event
    goes to this tenant's chain, where the operator set it)."""
    email = normalize_email(email)
    roles = check_roles(roles)
    if password is not None:
        check_password(password)
    if name is not None and (not name.strip() or len(name) > 200):
        raise Unprocessable("Give a name of 1 to 200 characters (--name).")
    get_tenant(session, tenant_id, enabled=True)
    user, created = put_user(session, email, (name or email.split("@")[0]).strip(), password)

    def event(action: str, reason: str = "", **data: Any) -> None:
        audit.record(
            session, tenant_id=tenant_id, actor=actor, action=action, subject=f"user:{user.id}",
            reason=reason, data={"user_id": user.id, **data},
        )  # fmt: skip

    if created:
        event("user.created", f"{email} created", email=email, password_set=password is not None)
    renamed = not created and name is not None and name.strip() != user.name
    if renamed:
        event("user.renamed", f"{email} renamed", name_was=user.name, name=(name or "").strip())
        user.name = (name or "").strip()
    if not created and password is not None:
        event("user.password_set", f"password of {email} replaced")
        user.password_hash = hash_password(password)
    session.add(user)
    added = [r for r in roles if r not in _roles(session, tenant_id, user.id)]
    for role in added:  # the event the people service writes for a grant
        event("user.role_granted", f"{role} granted to {email}", role=role)
    put_roles(session, tenant_id, user.id, added)
    person = PersonPublic(
        id=user.id, name=user.name, email=user.email, roles=_roles(session, tenant_id, user.id)
    )
    return UserAdded(
        person=person, created=created, roles_added=added, password_set=password is not None, renamed=renamed
    )


def _member(session: Session, tenant_id: str, email: str) -> tuple[User, list[str]]:
    email = normalize_email(email)
    get_tenant(session, tenant_id)
    user = find_user(session, email)
    roles = _roles(session, tenant_id, user.id) if user is not None else []
    if user is None or not roles:
        raise NotFound(
            f"{email} is not a member of tenant {tenant_id!r}: `frontdesk user list` shows who is."
        )
    return user, roles


def remove_user(session: Session, actor: str, tenant_id: str, email: str) -> UserRemoved:
    """Take every role the person holds in the tenant, and revoke their tokens and web sessions there."""
    user, roles = _member(session, tenant_id, email)
    now = utcnow()
    tokens = session.exec(
        select(ApiToken).where(
            ApiToken.tenant_id == tenant_id, ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None)
        )
    ).all()
    web = session.exec(
        select(WebSession).where(
            WebSession.tenant_id == tenant_id,
            WebSession.user_id == user.id,
            col(WebSession.revoked_at).is_(None),
        )
    ).all()
    audit.record(
        session, tenant_id=tenant_id, actor=actor, action="user.removed", subject=f"user:{user.id}",
        reason=f"{user.email} removed from the tenant",
        data={"user_id": user.id, "roles": roles, "token_ids": sorted(t.id for t in tokens), "sessions": len(web)},
    )  # fmt: skip
    for row in session.exec(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user.id)
    ):
        session.delete(row)
    revoked: list[Any] = [*tokens, *web]
    for item in revoked:
        item.revoked_at = now
        session.add(item)
    session.flush()
    person = PersonPublic(id=user.id, name=user.name, email=user.email, roles=roles)
    return UserRemoved(person=person, tokens_revoked=len(tokens), sessions_revoked=len(web))


# --- tokens ------------------------------------------------------------------------------------


def add_token(
    session: Session, actor: str, tenant_id: str, email: str, label: str = ""
) -> tuple[TokenPublic, str]:
    """A new API token for a member of the tenant: (the listed token, the secret, shown once)."""
    if len(label) > 200:
        raise Unprocessable("The label is too long: at most 200 characters.")
    get_tenant(session, tenant_id, enabled=True)
    user, _ = _member(session, tenant_id, email)
    token = new_token()
    token_id = new_id("tok")  # known before the row, so the audit event can name it
    audit.record(
        session, tenant_id=tenant_id, actor=actor, action="token.created", subject=f"token:{token_id}",
        reason=f"API token for {user.email}", data={"token_id": token_id, "user_id": user.id, "label": label},
    )  # fmt: skip
    session.add(
        ApiToken(id=token_id, user_id=user.id, tenant_id=tenant_id, token_hash=hash_token(token), label=label)
    )
    session.flush()
    return _token_public(session, token_id), token


def _token_public(session: Session, token_id: str) -> TokenPublic:
    row, email = session.exec(
        select(ApiToken, User.email)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.id == token_id)
    ).one()
    return _public_token(row, email)


def _public_token(row: ApiToken, email: str) -> TokenPublic:
    return TokenPublic(
        id=row.id, tenant_id=row.tenant_id, user_id=row.user_id, email=email, label=row.label,
        created_at=row.created_at, revoked_at=row.revoked_at,
    )  # fmt: skip


def list_tokens(session: Session, tenant_id: str, email: str | None = None) -> list[TokenPublic]:
    get_tenant(session, tenant_id)
    query = (
        select(ApiToken, User.email)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.tenant_id == tenant_id)
    )
    if email is not None:
        query = query.where(User.email == normalize_email(email))
    rows = session.exec(query.order_by(col(ApiToken.created_at), col(ApiToken.id))).all()
    return [_public_token(row, address) for row, address in rows]


def revoke_token(session: Session, actor: str, tenant_id: str, token_id: str) -> tuple[TokenPublic, bool]:
    """Revoke one token of the tenant: (the token, revoked now). Another tenant's token is not found."""
    get_tenant(session, tenant_id)
    row = session.get(ApiToken, token_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(
            f"No token {token_id!r} in tenant {tenant_id!r}: `frontdesk token list` shows its tokens."
        )
    if row.revoked_at is not None:
        return _token_public(session, token_id), False
    audit.record(
        session, tenant_id=tenant_id, actor=actor, action="token.revoked", subject=f"token:{token_id}",
        data={"token_id": token_id, "user_id": row.user_id},
    )  # fmt: skip
    row.revoked_at = utcnow()
    session.add(row)
    session.flush()
    return _token_public(session, token_id), True
