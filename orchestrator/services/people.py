"""The people of a tenant and the roles they hold there (casbin reads them per request).

A person belongs to a tenant by holding at least one role in it (`Membership` rows), so the
list, a grant and a revoke only ever touch members of the caller's tenant: another tenant's
user id answers 404, whether or not it exists. Roles are read on every request (sessions and
bearer tokens alike), so a change applies to the person's next request.

Two refusals keep a tenant from locking itself out by accident: an admin cannot revoke their
own admin role (so every tenant keeps at least the admin doing the revoking), and a person's
last role cannot be revoked (they would vanish from the tenant, with no page left to add them
back). Every grant and revoke is one audit event in the tenant's chain.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.errors import Conflict, NotFound, Unprocessable
from orchestrator.models import Membership, User

# The roles a tenant admin hands out. `platform_admin` is deliberately absent: it reaches past
# the tenant (the global kill switch), so no tenant admin can grant it to anyone.
ROLES: tuple[str, ...] = ("requester", "approver", "developer", "admin", "auditor")


class PersonPublic(BaseModel):
    id: str
    name: str
    email: str
    roles: list[str]  # held in this tenant, sorted


class PeoplePublic(BaseModel):
    tenant_id: str
    roles: list[str]  # the roles that can be granted here
    items: list[PersonPublic]


def _roles(session: Session, tenant_id: str, user_id: str) -> list[str]:
    rows = session.exec(
        select(Membership.role).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    ).all()
    return sorted(rows)


def list_people(session: Session, tenant_id: str) -> PeoplePublic:
    """Every member of the tenant with the roles they hold in it (never other tenants' roles)."""
    rows = session.exec(
        select(User, Membership.role)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.tenant_id == tenant_id)
        .order_by(col(User.name), col(User.email))
    ).all()
    people: dict[str, PersonPublic] = {}
    for user, role in rows:
        person = people.setdefault(
            user.id, PersonPublic(id=user.id, name=user.name, email=user.email, roles=[])
        )
        person.roles.append(role)
    for person in people.values():
        person.roles.sort()
    return PeoplePublic(tenant_id=tenant_id, roles=list(ROLES), items=list(people.values()))


def _member(session: Session, tenant_id: str, user_id: str) -> tuple[User, list[str]]:
    user = session.get(User, user_id) if user_id else None
    roles = _roles(session, tenant_id, user_id) if user is not None else []
    if user is None or not roles:
        raise NotFound(f"No person {user_id!r} in this tenant.")
    return user, roles


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise Unprocessable(f"Role {role!r} cannot be granted here; choose one of {', '.join(ROLES)}.")
    return role


def _public(user: User, roles: list[str]) -> PersonPublic:
    return PersonPublic(id=user.id, name=user.name, email=user.email, roles=sorted(roles))


def grant_role(session: Session, tenant_id: str, actor: str, user_id: str, role: str) -> PersonPublic:
    """Give a member of the tenant one more role; granting a role already held changes nothing."""
    _check_role(role)
    user, roles = _member(session, tenant_id, user_id)
    if role in roles:
        session.rollback()
        return _public(user, roles)
    # The audit write comes first: it serializes the admins of one tenant, so two grants (or a
    # grant and a revoke) never interleave their checks.
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.role_granted",
        subject=f"user:{user.id}",
        reason=f"{role} granted to {user.email}",
        data={"user_id": user.id, "role": role},
    )
    roles = _roles(session, tenant_id, user.id)  # read again under the audit lock
    if role in roles:  # another admin granted it meanwhile: keep the chain free of a no-op
        session.rollback()
        return _public(user, roles)
    session.add(Membership(tenant_id=tenant_id, user_id=user.id, role=role))
    session.commit()
    roles.append(role)
    return _public(user, roles)


def revoke_role(session: Session, tenant_id: str, actor: str, user_id: str, role: str) -> PersonPublic:
    """Take one role away from a member of the tenant (see the module docstring for refusals)."""
    _check_role(role)
    user, _ = _member(session, tenant_id, user_id)
    if user.id == actor and role == "admin":
        raise Conflict(
            "You cannot revoke your own admin role: the tenant could be left without an admin. "
            "Ask another admin of this tenant to do it.",
            title="Cannot revoke your own admin role",
        )
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.role_revoked",
        subject=f"user:{user.id}",
        reason=f"{role} revoked from {user.email}",
        data={"user_id": user.id, "role": role},
    )
    roles = _roles(session, tenant_id, user.id)  # read again under the audit lock
    if role not in roles:
        session.rollback()
        raise Conflict(f"{user.name} does not hold the {role} role in this tenant.", title="Role not held")
    if roles == [role]:
        session.rollback()
        raise Conflict(
            f"{role} is {user.name}'s only role in this tenant; revoking it would remove them from the "
            "tenant. Grant them another role first.",
            title="Cannot revoke the last role",
        )
    for row in session.exec(
        select(Membership).where(
            Membership.tenant_id == tenant_id, Membership.user_id == user.id, Membership.role == role
        )
    ):
        session.delete(row)
    session.commit()
    return _public(user, [r for r in roles if r != role])
