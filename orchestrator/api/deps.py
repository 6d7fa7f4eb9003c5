"""Request dependencies: the database session, the caller, and authorization.

Authorization is one dependency backed by the policy engine (`Allowed("task", "submit")`),
never an ad-hoc role check in a route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import and_, select
from sqlmodel import Session, col
from starlette.exceptions import HTTPException

from orchestrator.api.errors import Forbidden
from orchestrator.models import ApiToken, Membership, Tenant, User
from orchestrator.security import hash_token
from orchestrator.services.access import Principal
from orchestrator.services.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.frontdesk  # type: ignore[no-any-return]  # app.state is untyped; create_app sets it


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(
    session: SessionDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Principal:
    if not authorization:
        raise HTTPException(401, "Missing bearer token: send `Authorization: Bearer <token>`.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "The Authorization header must be `Bearer <token>`.")
    # One statement for the token, its user and their roles in the token's tenant (plain columns:
    # no ORM instances to build for a value that lives as long as the request).
    rows = session.execute(
        select(
            col(User.id), col(User.email), col(User.name), col(ApiToken.tenant_id), col(Membership.role)
        )
        .join(ApiToken, col(ApiToken.user_id) == col(User.id))
        .join(Tenant, col(Tenant.id) == col(ApiToken.tenant_id))
        .outerjoin(
            Membership,
            and_(
                col(Membership.user_id) == col(User.id), col(Membership.tenant_id) == col(ApiToken.tenant_id)
            ),
        )
        .where(
            col(ApiToken.token_hash) == hash_token(token.strip()),
            col(ApiToken.revoked_at).is_(None),
            col(Tenant.disabled_at).is_(None),  # `frontdesk tenant revoke`: its tokens stop at once
        )
    ).all()
    if not rows:
        raise HTTPException(401, "The API token is invalid or revoked, or its tenant is disabled.")
    user_id, email, name, tenant_id, _ = rows[0]
    roles = sorted(r[4] for r in rows if r[4] is not None)
    principal = Principal(user_id, email, name, tenant_id, tuple(roles))
    # Hand the connection back now: the caller is a plain value from here on, and a route that
    # then awaits (Temporal) must not pin a pooled connection while it waits.
    session.rollback()
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


class Allowed:
    """Dependency: the caller may perform `act` on `obj` in their tenant (policy engine decides)."""

    def __init__(self, obj: str, act: str) -> None:
        self.obj, self.act = obj, act

    def __call__(self, user: CurrentUser, state: StateDep) -> Principal:
        if not state.policy.allowed(list(user.roles), user.tenant_id, self.obj, self.act):
            raise Forbidden(
                f"Your roles ({', '.join(user.roles) or 'none'}) do not allow {self.obj}:{self.act}."
            )
        return user
