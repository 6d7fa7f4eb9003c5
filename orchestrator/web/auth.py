"""Sign-in, sign-out, the tenant switcher and the start page."""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.api.deps import SessionDep, StateDep
from orchestrator.api.errors import ServiceError, Unprocessable
from orchestrator.web import sessions
from orchestrator.web.deps import CsrfChecked, CsrfRefused, WebUserDep, allowed
from orchestrator.web.render import render

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "__Host-frontdesk_login"  # double-submit token: no one can sign you in as someone else


class TooManyAttempts(ServiceError):
    status, title = 429, "Too many attempts"


class LoginThrottle:
    """At most `limit` failed sign-ins per (client address, e-mail) in `window` seconds, per API
    process. Keyed by both, so a stranger elsewhere cannot lock a person out by guessing wrong;
    at most `max_keys` are remembered, so random e-mails cannot grow it without bound."""

    def __init__(self, limit: int = 5, window: float = 900, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.get(key, deque())
        cutoff = time.monotonic() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            self._failures.pop(key, None)
        return q

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def failed(self, key: str) -> None:
        q = self._recent(key)
        q.append(time.monotonic())
        self._failures[key] = q
        while len(self._failures) > self.max_keys:  # dicts keep insertion order: drop the oldest
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


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
    if not expected or not sessions.csrf_ok_token(expected, csrf_token):
        raise CsrfRefused("The sign-in form has expired or came from another site. Reload it and try again.")
    throttle: LoginThrottle = request.app.state.login_throttle
    address = email.strip().lower()
    key = f"{request.client.host if request.client else '?'}|{address}"
    if throttle.blocked(key):
        raise TooManyAttempts("Too many failed sign-ins for this address. Wait 15 minutes and try again.")
    if not email or not password:
        return _login_page(request, safe_next(next), email, "Enter your e-mail and password.", 422)
    result = sessions.sign_in(db, address, password, request.headers.get("user-agent", ""))
    if result is None:
        throttle.failed(key)
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
