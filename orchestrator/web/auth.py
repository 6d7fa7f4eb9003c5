"""Sign-in, sign-out, the tenant switcher and the start page."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import ServiceError, Unprocessable
from orchestrator.db import session_scope
from orchestrator.models import LoginFailure, utcnow
from orchestrator.web import sessions
from orchestrator.web.deps import CsrfChecked, CsrfRefused, WebUserDep, allowed
from orchestrator.web.deps import _same_origin as same_origin
from orchestrator.web.render import render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "__Host-frontdesk_login"  # double-submit token: no one can sign you in as someone else


class TooManyAttempts(ServiceError):
    status, title = 429, "Too many attempts"


class LoginThrottle:
    """At most `limit` failed sign-ins per (client address, e-mail) in `window` seconds, counted in
    the database (`login_failure`), so every API process behind a load balancer sees the same
    attempts. Keyed by both, so a stranger elsewhere cannot lock a person out by guessing wrong;
    only sha256("address|e-mail") is stored. A success clears the key; rows older than the window
    are deleted as new failures come in.

    An attempt is recorded *before* the password is checked (:meth:`attempt`), so parallel guesses
    cannot all pass a count taken before any of them failed: an attempt counts the rows committed
    before it and its own, so at most `limit` attempts pass; a burst may be refused a little early
    (its attempts count each other before the refused ones are removed), never late."""

    def __init__(self, engine: Engine, limit: int = 5, window: float = 900) -> None:
        self.engine, self.limit, self.window = engine, limit, timedelta(seconds=window)

    @staticmethod
    def key_hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _count(self, session: Session, digest: str) -> int:
        since = utcnow() - self.window
        query = select(func.count()).where(LoginFailure.key_hash == digest, col(LoginFailure.failed_at) >= since)
        return int(session.exec(query).one())

    def blocked(self, key: str) -> bool:
        with Session(self.engine) as session:
            return self._count(session, self.key_hash(key)) >= self.limit

    def attempt(self, key: str) -> bool:
        """Count one more attempt (kept as a failure unless :meth:`succeeded` follows); False when
        the key has used up its attempts, and then nothing is kept."""
        digest, now = self.key_hash(key), utcnow()
        row = LoginFailure(key_hash=digest, failed_at=now)
        with session_scope(self.engine) as session:
            session.add(row)
        with session_scope(self.engine) as session:
            allowed = self._count(session, digest) <= self.limit
            if not allowed:  # a flood of refused attempts does not grow the table
                session.execute(delete(LoginFailure).where(col(LoginFailure.id) == row.id))
        self._prune(now)
        return allowed

    def _prune(self, now: datetime) -> None:
        """Delete failures older than the window (best effort: two processes pruning at once may
        collide, and the next failure prunes again)."""
        try:
            with session_scope(self.engine) as session:
                session.execute(delete(LoginFailure).where(col(LoginFailure.failed_at) < now - self.window))
        except SQLAlchemyError as exc:
            log.info("login failures not pruned this time (%s)", type(exc).__name__)

    def succeeded(self, key: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(delete(LoginFailure).where(col(LoginFailure.key_hash) == self.key_hash(key)))


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def _login_page(request: Request, next_: str, email: str = "", error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", {"next": next_, "email": email, "error": error, "login_csrf": token}, status
    )
    set_cookie(response, LOGIN_COOKIE, token, 3600)
    return response


@router.get("/login", name="web_login")
def login_form(request: Request, db: SessionDep, next: str = "/") -> Response:
    if sessions.lookup(db, request.cookies.get(sessions.COOKIE)) is not None:
        return RedirectResponse(safe_next(next), 303)
    return _login_page(request, safe_next(next))


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    # The double-submit cookie alone is not enough: a page on another port of this host can set
    # that cookie (cookies do not keep ports apart) and sign the browser in as someone else, so the
    # origin is checked as for every other form.
    if not expected or not sessions.csrf_ok_token(expected, csrf_token) or not same_origin(request):
        raise CsrfRefused("The sign-in form has expired or came from another site. Reload it and try again.")
    throttle: LoginThrottle = request.app.state.login_throttle
    address = email.strip().lower()
    key = f"{request.client.host if request.client else '?'}|{address}"
    too_many = "Too many failed sign-ins for this address. Wait 15 minutes and try again."
    if throttle.blocked(key):
        raise TooManyAttempts(too_many)
    if not email or not password:
        return _login_page(request, safe_next(next), email, "Enter your e-mail and password.", 422)
    if not throttle.attempt(key):
        raise TooManyAttempts(too_many)
    result = sessions.sign_in(db, address, password, request.headers.get("user-agent", ""))
    if result is None:  # the attempt stays counted as a failure
        return _login_page(request, safe_next(next), email, "That e-mail and password do not match.", 401)
    throttle.succeeded(key)
    cookie, _row = result
    response = RedirectResponse(safe_next(next), 303)
    set_cookie(response, sessions.COOKIE, cookie, int(sessions.LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/logout", name="web_logout")
def logout(request: Request, db: SessionDep, user: CsrfChecked) -> Response:
    row = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
    if row is not None:
        sessions.revoke(db, row)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(sessions.COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/tenant", name="web_switch_tenant")
def switch_tenant(
    request: Request, db: SessionDep, user: CsrfChecked, tenant: Annotated[str, Form(max_length=64)]
) -> Response:
    row = sessions.lookup(db, request.cookies.get(sessions.COOKIE))
    if row is None or not sessions.switch_tenant(db, row, tenant):
        raise Unprocessable(f"You are not a member of tenant {tenant!r}.", title="Cannot switch tenant")
    return RedirectResponse("/", 303)


@router.get("/", name="web_home")
def home(user: WebUserDep, state: StateDep) -> Response:
    for obj, act, target in [
        ("checkpoint", "decide", "/inbox"),
        ("task", "submit", "/tasks"),
        ("cost", "read", "/cost"),
        ("catalog", "read", "/catalog"),
    ]:
        if allowed(state, user, obj, act):
            return RedirectResponse(target, 303)
    return RedirectResponse("/tasks", 303)


@router.get("/account", name="web_account")
def account(request: Request, user: WebUserDep, db: SessionDep) -> Response:
    """Who I am here: roles in this tenant, the tenants I belong to, my open sessions."""
    rows = sessions.open_sessions(db, user.user_id)
    return render(request, "account.html", {"sessions": rows, "current": user.session_id})


@router.post("/account/sign-out-everywhere", name="web_sign_out_everywhere")
def sign_out_everywhere(db: SessionDep, user: CsrfChecked) -> Response:
    sessions.revoke_all(db, user.user_id, user.tenant_id)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(sessions.COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response
