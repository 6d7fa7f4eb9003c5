"""Request dependencies: the database session, the caller, and authorization.

Authorization is one dependency backed by the policy engine (`Allowed("task", "submit")`),
never an ad-hoc role check in a route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session, col, select
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
    row = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .join(Tenant, col(Tenant.id) == col(ApiToken.tenant_id))
        .where(
            col(ApiToken.token_hash) == hash_token(token.strip()),
            col(ApiToken.revoked_at).is_(None),
            col(Tenant.disabled_at).is_(None),  # `frontdesk tenant revoke`: its tokens stop at once
        )
    ).first()
    if row is None:
        raise HTTPException(401, "The API token is invalid or revoked, or its tenant is disabled.")
    api_token, user = row
    roles = session.exec(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.tenant_id == api_token.tenant_id
        )
    ).all()
    principal = Principal(user.id, user.email, user.name, api_token.tenant_id, tuple(sorted(roles)))
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
