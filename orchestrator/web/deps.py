"""Dependencies of the web pages: the signed-in person (from the session cookie) and CSRF.

A page asks for `WebUserDep` (any signed-in person) or `WebAllowed("checkpoint", "decide")`
(the policy engine decides, exactly as for the REST API); every POST also depends on
`CsrfChecked`, which refuses a request whose token does not match the session's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlmodel import select

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import Forbidden, ServiceError
from orchestrator.models import Membership, User
from orchestrator.services.access import Principal, can
from orchestrator.web import sessions


class SignInRequired(ServiceError):
    status, title = 401, "Please sign in"


class CsrfRefused(ServiceError):
    status, title = 403, "Request refused"


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    session_id: str
    csrf: str
    tenants: tuple[tuple[str, str], ...]  # (id, name) of every tenant the person is a member of

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    @property
    def user_id(self) -> str:
        return self.principal.user_id


def get_web_user(request: Request, db: SessionDep) -> WebUser:
    cached = getattr(request.state, "web_user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]  # request.state is untyped; only this function sets it
    row = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
    if row is None:
        raise SignInRequired("Your session has ended or you are not signed in. Please sign in again.")
    user = db.get(User, row.user_id)
    assert user is not None  # a session row references its user (foreign key)
    roles = db.exec(
        select(Membership.role).where(Membership.user_id == user.id, Membership.tenant_id == row.tenant_id)
    ).all()
    tenants = tuple((t.id, t.name) for t in sessions.tenants_of(db, user.id))
    principal = Principal(user.id, user.email, user.name, row.tenant_id, tuple(sorted(roles)))
    web_user = WebUser(principal, row.id, row.csrf_token, tenants)
    db.rollback()  # hand the connection back before the page awaits anything
    request.state.web_user = web_user
    return web_user


WebUserDep = Annotated[WebUser, Depends(get_web_user)]


class WebAllowed:
    """The signed-in person may perform `act` on `obj` in their current tenant."""

    def __init__(self, obj: str, act: str) -> None:
        self.obj, self.act = obj, act

    def __call__(self, user: WebUserDep, state: StateDep) -> WebUser:
        if not can(state, user.principal, self.obj, self.act):
            roles = ", ".join(user.principal.roles) or "none"
            raise Forbidden(f"This page needs a role you do not hold in this tenant (yours: {roles}).")
        return user


def _same_origin(request: Request) -> bool:
    """Refuse what the browser itself tells us came from another site or origin."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        return urlsplit(origin).netloc == host
    return origin != "null"


async def check_csrf(request: Request, user: WebUserDep) -> WebUser:
    presented = request.headers.get("x-csrf-token")
    if presented is None:
        form = await request.form()  # parsed once; the route's Form() fields reuse it
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    if not _same_origin(request) or not sessions.csrf_ok_token(user.csrf, presented):
        raise CsrfRefused(
            "This form did not come from a Frontdesk page of your current session (CSRF check). "
            "Reload the page and try again."
        )
    return user


CsrfChecked = Annotated[WebUser, Depends(check_csrf)]


def allowed(state: StateDep, user: WebUser, obj: str, act: str) -> bool:
    return can(state, user.principal, obj, act)
