"""Security sweeps over the real app: cross-tenant replay of every id-taking route, a CSRF sweep of
every state-changing form, and schemathesis with all checks over the live API as two roles.

The route lists come from the app's own route table (`iter_route_contexts`), so a new route that
takes an id, or a new state-changing form, fails the sweep until it is given a fixture here
(`ID_ROUTES`, `NEUTRAL_ROUTES`, `FORMS`): coverage stays complete by construction.

Cross-tenant: two tenants get the same real objects (tasks run by the worker up to their
checkpoints, a task submitted through the web form with an attachment, a comment, a budget, a
kill switch, people with every role, API tokens and web sessions). Every id-taking route is
replayed with tenant A's ids by every person of tenant B (requester, approver, developer, admin
and one holding every role, so a role refusal cannot hide a tenant leak): every answer must be
403 or 404, none may contain tenant A's data, and tenant A's rows (and its workflows' histories)
must be unchanged. The same request with tenant B's own ids, by the person whose role allows it,
must not be refused as not found or forbidden: that proves the replayed requests were right.

CSRF: each state-changing form is sent with a valid session and (1) no token, (2) another
session's token, (3) the right token from another Origin, (4) Origin "null", (5) Sec-Fetch-Site
cross-site, (6) another session's token in X-CSRF-Token; each must be 403 and change nothing; then
the right token must not be refused for CSRF.

The sweeps run against the ASGI app in the tests (tests/integration/test_cross_tenant_sweep.py,
tests/webui/test_csrf_sweep.py) and against a live stack (`python -m reliability cross-tenant csrf
schemathesis`).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user
from orchestrator.models import ModelCall
from orchestrator.resources import DEFAULT_POLICIES_DIR
from orchestrator.web import argform
from reliability.report import Row, Setup, ToRows

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
SESSION_COOKIE = "__Host-frontdesk_session"
LOGIN_COOKIE = "__Host-frontdesk_login"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLES = ("requester", "approver", "developer", "admin")
PEOPLE: dict[str, list[str]] = {
    "requester": ["requester"],
    "approver": ["approver"],
    "developer": ["developer"],
    "admin": ["admin"],
    "all": list(ROLES),
}
REFUSED = frozenset({403, 404})
REQUEST_TIMEOUT = 15.0  # a request still open after this is a hang (an event stream left open)


# --- the route table ------------------------------------------------------------------------------


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves (HEAD, answered with GET, left out)."""
    seen = {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    return sorted(seen, key=lambda r: (r[1], r[0]))


def id_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [r for r in route_table(app) if "{" in r[1]]


def web_forms(app: FastAPI) -> list[tuple[str, str]]:
    """Every state-changing route of the web UI (pages sign in with a cookie, so CSRF applies)."""
    return [r for r in route_table(app) if r[0] in STATE_CHANGING and not r[1].startswith("/api/")]


# --- tenants, people and their objects ------------------------------------------------------------


@dataclass
class Person:
    key: str
    user_id: str
    email: str
    name: str
    password: str
    token: str
    cookie: str = ""
    csrf: str = ""


@dataclass
class Tenant:
    id: str
    marker: str  # in the tenant's name, people's names, task inputs, comments, switch reasons
    people: dict[str, Person]
    orders: list[str]
    tasks: list[str] = field(default_factory=list)  # [completed (web form, attachment), waiting, waiting]
    checkpoints: list[str] = field(default_factory=list)  # the open checkpoints of the two waiting tasks
    workflows: list[str] = field(default_factory=list)
    model_calls: list[str] = field(default_factory=list)  # the router requests of its tasks

    def secrets_in(self, text: str, sent: str = "") -> str | None:
        """What of this tenant's data a response shows (what the caller sent itself is no leak)."""
        for needle in (self.marker, self.id, *(p.email for p in self.people.values())):
            if needle in text and needle not in sent:
                return needle
        return None


def new_marker() -> str:
    return "zq" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


def make_tenant(engine: Engine, tenant_id: str, marker: str, orders: int = 3) -> Tenant:
    """The tenant with one person per role set (password and API token each) and a few orders."""
    people: dict[str, Person] = {}
    order_ids = [f"ORD-{secrets.randbelow(10**8):08d}" for _ in range(orders)]
    with session_scope(engine) as session:
        ensure_tenant(session, tenant_id, f"Sweep tenant {marker}")
        for key, roles in PEOPLE.items():
            email, password = f"{key}@{tenant_id}.example", secrets.token_urlsafe(12)
            user = ensure_user(session, tenant_id, email, f"{key.title()} {marker}", roles, password=password)
            session.flush()
            token = ensure_token(session, user, tenant_id, label="security sweep")
            people[key] = Person(key, user.id, email, user.name, password, token)
        for order in order_ids:
            session.add(DemoOrder(id=order, tenant_id=tenant_id, customer=f"Customer {marker}",
                                  email="c@example.com", amount=Decimal("600.00"), currency="EUR",
                                  status="delivered"))  # fmt: skip
    return Tenant(tenant_id, marker, people, order_ids)


def policies_with_rule(folder: Path, tenant_id: str, rule_id: str) -> Path:
    """The shipped policies plus one rule of `tenant_id`'s own (naming lookup_order): a tenant's
    own rules are data other tenants must never see."""
    shutil.copytree(DEFAULT_POLICIES_DIR, folder, dirs_exist_ok=True)
    csv = folder / "tool_policy.csv"
    lines = csv.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith(", order-lookup"))
    lines.insert(at, f"p, {tenant_id}, refund_agent, lookup_order, True, allow, {rule_id}\n")
    csv.write_text("".join(lines))
    return folder


def new_client(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """A client that keeps no cookies: every request says whose session it carries."""
    jar = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(base_url=base_url, transport=transport, cookies=jar, timeout=60)


def cookie_of(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in {response.status_code} {response.headers}")


def csrf_in(response: httpx.Response) -> str:
    found = CSRF_FIELD.search(response.text)
    assert found, f"no CSRF token in {response.request.url}: {response.status_code}"
    return found.group(1)


async def login_form(http: httpx.AsyncClient) -> tuple[str, str]:
    """(login cookie, login form token) of a fresh sign-in form."""
    form = await http.get("/login")
    return cookie_of(form, LOGIN_COOKIE), csrf_in(form)


async def sign_in(http: httpx.AsyncClient, person: Person) -> Person:
    """A fresh web session for the person (its cookie and CSRF token set on `person`)."""
    cookie, token = await login_form(http)
    r = await http.post(
        "/login",
        data={"email": person.email, "password": person.password, "csrf_token": token},
        headers={"Cookie": f"{LOGIN_COOKIE}={cookie}"},
    )
    assert r.status_code == 303, f"sign-in of {person.email}: {r.status_code} {r.text[:300]}"
    person.cookie = cookie_of(r, SESSION_COOKIE)
    person.csrf = csrf_in(await http.get("/account", headers=web_headers(person)))
    return person


def web_headers(person: Person) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={person.cookie}"}


def bearer(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


async def populate(http: httpx.AsyncClient, t: Tenant, within: float = 180) -> Tenant:
    """Real objects made through the product's own routes, then waited for: a budget and a kill
    switch (admin), two refunds of 120 EUR waiting at their checkpoints and a 40 EUR refund sent
    through the web form with a text attachment, completed (requester), a comment (approver)."""
    admin, requester, approver = t.people["admin"], t.people["requester"], t.people["approver"]
    r = await http.put("/api/budgets/tenant_month", headers=bearer(admin),
                       json={"subject": "", "limit_usd": "77.00", "on_breach": "stop"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = await http.post("/api/switches", headers=bearer(admin), json={
        "scope": "tool", "subject": "update_ticket", "active": True, "mode": "stop", "reason": f"sweep {t.marker}"})  # fmt: skip
    assert r.status_code == 200, r.text
    await sign_in(http, requester)
    r = await http.post(
        "/tasks",
        headers=web_headers(requester),
        data={"csrf_token": requester.csrf, "workflow": "refund_request@1", "idempotency_key": secrets.token_hex(8),
              "input": f"Refund 40 EUR on order {t.orders[0]}, the lamp arrived broken."},
        files={"attachment": ("note.txt", f"Photo notes of {t.marker}: the lamp is broken.".encode(), "text/plain")},
    )  # fmt: skip
    assert r.status_code == 303, f"web submit: {r.status_code} {r.text[:500]}"
    t.tasks = [r.headers["location"].rsplit("/", 1)[-1]]
    for order in t.orders[1:3]:
        r = await http.post("/api/tasks", headers=bearer(requester), json={"workflow": "refund_request@1",
            "input": f"Order {order}: the customer wants 120 EUR back, the chair arrived scratched. Case {t.marker}."})  # fmt: skip
        assert r.status_code == 202, r.text
        t.tasks.append(r.json()["id"])
    deadline = time.monotonic() + within
    for i, task_id in enumerate(t.tasks):
        want = "completed" if i == 0 else "waiting"
        while True:
            task = (await http.get(f"/api/tasks/{task_id}", headers=bearer(admin))).json()
            if task["status"] == want and (i == 0 or any(c["status"] == "open" for c in task["checkpoints"])):
                break
            assert task["status"] not in ("failed", "cancelled", "rejected") and time.monotonic() < deadline, (
                f"{task_id} of {t.id} is {task['status']}, wanted {want}: {task.get('error')}"
            )
            await asyncio.sleep(0.5)
        t.workflows.append(task["workflow_id"] if "workflow_id" in task else f"task-{task_id}")
        if i:
            t.checkpoints.append(next(c["id"] for c in task["checkpoints"] if c["status"] == "open"))
    r = await http.post(f"/api/checkpoints/{t.checkpoints[0]}/comments", headers=bearer(approver),
                        json={"body": f"Looked at it ({t.marker})."})  # fmt: skip
    assert r.status_code == 201, r.text
    return t


# --- what a tenant's data is, to compare before and after ----------------------------------------

# Rows that change by themselves: a session's last-seen time, the notification dispatcher's work.
VOLATILE = {"web_session", "notification_outbox", "login_failure"}


def tenant_rows(engine: Engine, t: Tenant) -> dict[str, list[str]]:
    """Every row of the tenant (by tenant_id, or by its tasks, checkpoints and people)."""
    user_ids = [p.user_id for p in t.people.values()]
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        task_ids = list(t.tasks)
        for table in SQLModel.metadata.sorted_tables:
            if table.name in VOLATILE:
                continue
            cols = table.c
            if "tenant_id" in cols:
                query = sa_select(table).where(cols.tenant_id == t.id)
            elif "task_id" in cols:
                query = sa_select(table).where(cols.task_id.in_(task_ids))
            elif "checkpoint_id" in cols:
                query = sa_select(table).where(cols.checkpoint_id.in_(t.checkpoints))
            elif table.name == "user":
                query = sa_select(table).where(cols.id.in_(user_ids))
            elif table.name == "tenant":
                query = sa_select(table).where(cols.id == t.id)
            else:
                continue
            out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(query))
    return out


def model_call_ids(engine: Engine, t: Tenant) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa_select(ModelCall.id).where(ModelCall.tenant_id == t.id))]  # type: ignore[call-overload]


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


async def history_lengths(temporal: Any, t: Tenant) -> dict[str, int]:
    out = {}
    for workflow_id in t.workflows:
        history = await temporal.get_workflow_handle(workflow_id).fetch_history()
        out[workflow_id] = len(history.events)
    return out


# --- requests -------------------------------------------------------------------------------------


@dataclass
class Call:
    route: tuple[str, str]
    path: str
    json: Any = None
    form: dict[str, str] | None = None
    control: str = "admin"  # who, in the object's own tenant, may do this


@dataclass
class Answer:
    status: int  # 0: no answer within REQUEST_TIMEOUT
    text: str
    location: str = ""


async def send(http: httpx.AsyncClient, call: Call, person: Person, **extra_headers: str) -> Answer:
    """The call as `person`: a bearer token for /api, the session cookie (and its CSRF token in
    the form) for pages."""
    method = call.route[0]
    if call.path.startswith("/api/"):
        kwargs: dict[str, Any] = {"headers": bearer(person) | extra_headers}
        if call.json is not None:
            kwargs["json"] = call.json
    else:
        kwargs = {"headers": web_headers(person) | extra_headers}
        if method != "GET":
            kwargs["data"] = {"csrf_token": person.csrf, **(call.form or {})}
    try:
        r = await asyncio.wait_for(http.request(method, call.path, **kwargs), REQUEST_TIMEOUT)
    except TimeoutError:
        return Answer(0, "")
    return Answer(r.status_code, r.text, r.headers.get("location", ""))


def _edited(t: Tenant) -> dict[str, Any]:
    return {"order_id": t.orders[1], "amount": "110.00", "currency": "EUR", "reason": "edited by the sweep"}


def _edit_form(t: Tenant) -> dict[str, str]:
    """The edit form of the first checkpoint's refund, with the amount lowered."""
    edited = {k: str(v) for k, v in _edited(t).items()}
    return {**{argform.PREFIX + k: v for k, v in edited.items()}, "comment": "edits"}


def _api_decisions(t: Tenant, cp: str) -> list[Call]:
    route = ("POST", "/api/checkpoints/{checkpoint_id}/decision")
    bodies: list[dict[str, Any]] = [
        {"decision": "approve", "comment": "fine"},
        {"decision": "reject", "comment": "no"},
        {"decision": "request_changes", "comment": "change it"},
        {"decision": "approve_with_edits", "comment": "edited", "edited_args": _edited(t)},
    ]
    return [Call(route, f"/api/checkpoints/{cp}/decision", json=b, control="approver") for b in bodies]


def _web_decisions(t: Tenant, cp: str) -> list[Call]:
    route = ("POST", "/checkpoints/{checkpoint_id}/decision")
    forms = [
        {"decision": "approve", "comment": "fine"},
        {"decision": "reject", "comment": "no"},
        {"decision": "request_changes", "comment": "change it"},
        {"decision": "approve_with_edits", "comment": "edited", "edited_args_json": json.dumps(_edited(t))},
    ]
    return [Call(route, f"/checkpoints/{cp}/decision", form=f, control="approver") for f in forms]


def _role_calls(t: Tenant, method: str) -> list[Call]:
    route = (method, "/api/users/{user_id}/roles/{role}")
    return [Call(route, f"/api/users/{p.user_id}/roles/{role}") for p in t.people.values() for role in ROLES]


Builder = Callable[[Tenant], list[Call]]

# Routes whose path names an object of a tenant: replayed with the other tenant's ids. Task lists
# begin with the completed task, so a control of the event stream ends by itself.
ID_ROUTES: dict[tuple[str, str], Builder] = {
    ("GET", "/api/tasks/{task_id}"): lambda t: [
        Call(("GET", "/api/tasks/{task_id}"), f"/api/tasks/{i}") for i in t.tasks],
    ("POST", "/api/tasks/{task_id}/cancel"): lambda t: [
        Call(("POST", "/api/tasks/{task_id}/cancel"), f"/api/tasks/{i}/cancel") for i in t.tasks],
    ("GET", "/api/tasks/{task_id}/evidence"): lambda t: [
        Call(("GET", "/api/tasks/{task_id}/evidence"), f"/api/tasks/{i}/evidence") for i in t.tasks],
    ("GET", "/api/checkpoints/{checkpoint_id}"): lambda t: [
        Call(("GET", "/api/checkpoints/{checkpoint_id}"), f"/api/checkpoints/{c}", control="approver")
        for c in t.checkpoints],
    ("POST", "/api/checkpoints/{checkpoint_id}/decision"): lambda t: [
        c for cp in t.checkpoints for c in _api_decisions(t, cp)],
    ("POST", "/api/checkpoints/{checkpoint_id}/reassign"): lambda t: [
        Call(("POST", "/api/checkpoints/{checkpoint_id}/reassign"), f"/api/checkpoints/{c}/reassign", json=body)
        for c in t.checkpoints
        for body in ({"assignee_role": "approver", "comment": "same role"},
                     {"named_approvers": [t.people["approver"].user_id], "comment": "named"})],
    ("POST", "/api/checkpoints/{checkpoint_id}/comments"): lambda t: [
        Call(("POST", "/api/checkpoints/{checkpoint_id}/comments"), f"/api/checkpoints/{c}/comments",
             json={"body": "a comment"}, control="approver") for c in t.checkpoints],
    ("POST", "/api/model-calls/{call_id}/reconcile"): lambda t: [
        Call(("POST", "/api/model-calls/{call_id}/reconcile"), f"/api/model-calls/{m}/reconcile",
             json={"cost_usd": "0.01", "note": "sweep"}) for m in t.model_calls[:4]],
    ("PUT", "/api/users/{user_id}/roles/{role}"): lambda t: _role_calls(t, "PUT"),
    ("DELETE", "/api/users/{user_id}/roles/{role}"): lambda t: _role_calls(t, "DELETE"),
    ("GET", "/tasks/{task_id}"): lambda t: [Call(("GET", "/tasks/{task_id}"), f"/tasks/{i}") for i in t.tasks],
    ("GET", "/tasks/{task_id}/timeline"): lambda t: [
        Call(("GET", "/tasks/{task_id}/timeline"), f"/tasks/{i}/timeline") for i in t.tasks],
    ("GET", "/tasks/{task_id}/events"): lambda t: [
        Call(("GET", "/tasks/{task_id}/events"), f"/tasks/{i}/events") for i in t.tasks],
    ("GET", "/tasks/{task_id}/evidence"): lambda t: [
        Call(("GET", "/tasks/{task_id}/evidence"), f"/tasks/{i}/evidence") for i in t.tasks],
    ("GET", "/tasks/{task_id}/evidence.json"): lambda t: [
        Call(("GET", "/tasks/{task_id}/evidence.json"), f"/tasks/{i}/evidence.json") for i in t.tasks],
    ("POST", "/tasks/{task_id}/cancel"): lambda t: [
        Call(("POST", "/tasks/{task_id}/cancel"), f"/tasks/{i}/cancel", form={}) for i in t.tasks],
    ("GET", "/checkpoints/{checkpoint_id}"): lambda t: [
        Call(("GET", "/checkpoints/{checkpoint_id}"), f"/checkpoints/{c}", control="approver") for c in t.checkpoints],
    ("POST", "/checkpoints/{checkpoint_id}/edits"): lambda t: [
        Call(("POST", "/checkpoints/{checkpoint_id}/edits"), f"/checkpoints/{c}/edits",
             form=_edit_form(t), control="approver") for c in t.checkpoints],
    ("POST", "/checkpoints/{checkpoint_id}/decision"): lambda t: [
        c for cp in t.checkpoints for c in _web_decisions(t, cp)],
    ("POST", "/checkpoints/{checkpoint_id}/comments"): lambda t: [
        Call(("POST", "/checkpoints/{checkpoint_id}/comments"), f"/checkpoints/{c}/comments",
             form={"body": "a comment"}, control="approver") for c in t.checkpoints],
}  # fmt: skip

# Routes whose path key names nothing a tenant owns: the shared catalog (a ref) and the caller's
# own budget (a scope). Replayed by tenant B they answer from B's own tenant; they must show none
# of A's data (a tenant's own policy rules included) and leave A unchanged.
NEUTRAL_ROUTES: dict[tuple[str, str], list[str]] = {
    ("GET", "/api/workflows/{ref}"): ["/api/workflows/refund_request@1", "/api/workflows/refund_request"],
    ("GET", "/api/agents/{ref}"): ["/api/agents/refund_agent"],
    ("GET", "/api/tools/{ref}"): ["/api/tools/lookup_order", "/api/tools/issue_refund"],
    ("PUT", "/api/budgets/{scope}"): ["/api/budgets/tenant_month", "/api/budgets/task_max"],
    ("GET", "/catalog/workflows/{ref}"): ["/catalog/workflows/refund_request@1"],
    ("GET", "/catalog/agents/{ref}"): ["/catalog/agents/refund_agent"],
    ("GET", "/catalog/tools/{ref}"): ["/catalog/tools/lookup_order"],
}
NEUTRAL_BODY = {"subject": "", "limit_usd": "55.00", "on_breach": "stop"}


def _body_id_calls(own: Tenant, victim: Tenant) -> list[tuple[Call, frozenset[int]]]:
    """Routes that take another object's id in the body: a person of `own` names `victim`'s."""
    calls: list[tuple[Call, frozenset[int]]] = []
    for p in victim.people.values():
        for op in ("grant", "revoke"):
            form = {"user_id": p.user_id, "role": "approver", "op": op}
            calls.append((Call(("POST", "/admin/users"), "/admin/users", form=form), REFUSED))
        body = {"named_approvers": [p.user_id, p.email][: 1 + (p.key == "all")], "comment": "to another tenant"}
        cp = own.checkpoints[-1]
        call = Call(("POST", "/api/checkpoints/{checkpoint_id}/reassign"), f"/api/checkpoints/{cp}/reassign", json=body)
        calls.append((call, REFUSED | {422}))
    calls.append((Call(("POST", "/tenant"), "/tenant", form={"tenant": victim.id}), REFUSED | {422}))
    return calls


# --- the cross-tenant sweep -----------------------------------------------------------------------


async def cross_tenant(
    app: FastAPI,
    http: httpx.AsyncClient,
    engine: Engine,
    a: Tenant,
    b: Tenant,
    *,
    temporal: Any = None,
    a_rule: str = "",
) -> dict[str, Any]:
    """Replay every id-taking route with tenant A's objects as every person of tenant B; `a` and `b`
    must be populated. `a_rule`: a policy rule id of A's own, which A sees and B must not."""
    routes = id_routes(app)
    for t in (a, b):
        t.model_calls = await asyncio.to_thread(model_call_ids, engine, t)
    uncovered = [r for r in routes if r not in ID_ROUTES and r not in NEUTRAL_ROUTES]
    stale = [r for r in [*ID_ROUTES, *NEUTRAL_ROUTES] if r not in routes]
    for person in b.people.values():
        await sign_in(http, person)
    a_admin = await sign_in(http, a.people["admin"])
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    by_person: dict[str, Counter[int]] = {who: Counter() for who in b.people}
    per_route: dict[str, int] = {}

    def record(kind: str, call: Call, who: str, answer: Answer, allowed: frozenset[int]) -> bool:
        sent = " ".join([call.path, json.dumps(call.json), json.dumps(call.form)])
        leak = a.secrets_in(answer.text + answer.location, sent)
        ok = answer.status in allowed and leak is None
        if not ok:
            failures.append(f"{kind}: {call.route[0]} {call.path} as {b.id}/{who}: {answer.status}"
                            + (f", shows {leak!r}" if leak else "") + f" {answer.text[:160]!r}")  # fmt: skip
        return ok

    before = await asyncio.to_thread(tenant_rows, engine, a)
    histories = await history_lengths(temporal, a) if temporal is not None else {}

    # 1. every id-taking route, A's ids, every person of B
    requests = succeeded = 0
    for route in routes:
        if route not in ID_ROUTES:
            continue
        calls = ID_ROUTES[route](a)
        per_route[f"{route[0]} {route[1]}"] = len(calls) * len(b.people)
        for call in calls:
            for who, person in b.people.items():
                answer = await send(http, call, person)
                requests += 1
                statuses[answer.status] += 1
                by_person[who][answer.status] += 1
                if not record("cross-tenant", call, who, answer, REFUSED):
                    succeeded += answer.status not in REFUSED
    # 2. ids in the body
    body_requests = body_succeeded = 0
    for call, allowed in _body_id_calls(b, a):
        for who, person in b.people.items():
            answer = await send(http, call, person)
            body_requests += 1
            if not record("id in body", call, who, answer, allowed):
                body_succeeded += answer.status not in allowed
    # 3. keys that name no tenant's object, and every page or list without an id: no A data
    neutral_requests = 0
    for route, paths in NEUTRAL_ROUTES.items():
        for path in paths:
            call = Call(route, path, json=NEUTRAL_BODY if route[0] == "PUT" else None)
            for who, person in b.people.items():
                neutral_requests += 1
                record("tenant-neutral key", call, who, await send(http, call, person), frozenset({200, 403}))
    list_requests = 0
    for method, path in route_table(app):
        if method == "GET" and "{" not in path:
            call = Call((method, path), path)
            for who, person in b.people.items():
                answer = await send(http, call, person)
                list_requests += 1
                record("list or page", call, who, answer, frozenset(range(200, 500)))
    # 4. A unchanged: its rows, its workflows' histories, its tokens and sessions still work
    await asyncio.sleep(1.0)  # anything a request set off in the background has happened by now
    after = await asyncio.to_thread(tenant_rows, engine, a)
    changed = changed_tables(before, after)
    histories_after = await history_lengths(temporal, a) if temporal is not None else {}
    moved = sorted(w for w in histories if histories[w] != histories_after.get(w))
    me = await http.get("/api/me", headers=bearer(a.people["requester"]))
    page = await http.get(f"/tasks/{a.tasks[0]}", headers=web_headers(a_admin))
    a_works = me.status_code == 200 and page.status_code == 200 and a.marker in page.text
    rule_seen_by_a = rule_hidden_from_b = True
    if a_rule:
        tool = await http.get("/api/tools/lookup_order", headers=bearer(a.people["admin"]))
        rule_seen_by_a = a_rule in tool.text
        shown = await http.get("/api/policies", headers=bearer(a.people["admin"]))
        rule_seen_by_a = rule_seen_by_a and a_rule in shown.text
        rule_hidden_from_b = not any("shows" in f and a.marker in f for f in failures)
    # 5. the same requests with B's own ids, by who may do them: not refused (the fixtures are right)
    controls: dict[str, int] = {}
    control_failures: list[str] = []
    # what ends an object (a decision, a cancel) goes last, so the other controls find it open
    for route in sorted((r for r in routes if r in ID_ROUTES), key=lambda r: r[1].endswith(("/decision", "/cancel"))):
        call = ID_ROUTES[route](b)[0]
        answer = await send(http, call, b.people[call.control])
        controls[f"{route[0]} {route[1]}"] = answer.status
        if answer.status in (0, 401, 403, 404) or answer.status >= 500:
            control_failures.append(f"{call.route[0]} {call.path} as {b.id}/{call.control}: {answer.status} "
                                    f"{answer.text[:200]!r}")  # fmt: skip
    return {
        "id_routes": len(routes),
        "covered": len(routes) - len(uncovered),
        "uncovered": [f"{m} {p}" for m, p in uncovered],
        "stale_fixtures": [f"{m} {p}" for m, p in stale],
        "replayed_routes": len(per_route),
        "requests": requests,
        "succeeded": succeeded,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "statuses_by_person": {who: {str(k): v for k, v in sorted(c.items())} for who, c in by_person.items()},
        "per_route": per_route,
        "body_id_requests": body_requests,
        "body_id_succeeded": body_succeeded,
        "neutral_routes": len(NEUTRAL_ROUTES),
        "neutral_requests": neutral_requests,
        "list_requests": list_requests,
        "leaks": sum(1 for f in failures if ", shows " in f),
        "failures": failures[:40],
        "failure_count": len(failures),
        "tenant_a_changed": changed,
        "tenant_a_rows": sum(len(v) for v in before.values()),
        "workflows_moved": moved,
        "workflows_checked": len(histories),
        "tenant_a_still_works": a_works,
        "a_rule": a_rule,
        "a_rule_seen_by_a": rule_seen_by_a,
        "a_rule_hidden_from_b": rule_hidden_from_b,
        "controls": controls,
        "control_failures": control_failures,
        "people_per_tenant": len(b.people),
    }


def cross_tenant_rows(r: dict[str, Any]) -> list[Row]:
    s = "cross-tenant"
    return [
        Row(s, "every id-taking route (API and pages) has a cross-tenant fixture",
            f"{r['covered']}/{r['id_routes']} routes" + (f", missing {', '.join(r['uncovered'])}" if r["uncovered"] else ""),
            not r["uncovered"]),
        Row(s, "tenant A's ids replayed by every person of tenant B: none succeeds",
            f"{r['replayed_routes']} routes, {r['requests']} requests, {r['succeeded']} succeeded {r['statuses']}",
            r["succeeded"] == 0 and r["requests"] > 0),
        Row(s, "...of them by the person of B holding every role (no role refusal can hide a leak): all 404",
            f"{sum(r['statuses_by_person']['all'].values())} requests: {r['statuses_by_person']['all']}",
            set(r["statuses_by_person"]["all"]) == {"404"}),
        Row(s, "tenant A's ids in request bodies (grant, reassign, switch tenant): none succeeds",
            f"{r['body_id_requests']} requests, {r['body_id_succeeded']} succeeded", r["body_id_succeeded"] == 0),
        Row(s, "no answer to tenant B shows tenant A's data (ids, lists, pages, catalog, own rules)",
            f"{r['requests'] + r['body_id_requests'] + r['neutral_requests'] + r['list_requests']} answers, "
            f"{r['leaks']} leaks, {r['failure_count']} failed",
            r["failure_count"] == 0 and r["a_rule_seen_by_a"]),
        Row(s, "tenant A unchanged: rows, workflow histories, tokens and sessions",
            f"{r['tenant_a_rows']} rows, {len(r['tenant_a_changed'])} tables changed, "
            f"{len(r['workflows_moved'])}/{r['workflows_checked']} workflows moved",
            not r["tenant_a_changed"] and not r["workflows_moved"] and r["tenant_a_still_works"]),
        Row(s, "the same requests on tenant B's own objects are not refused (the fixtures are right)",
            f"{len(r['controls']) - len(r['control_failures'])}/{len(r['controls'])} routes",
            not r["control_failures"]),
    ]  # fmt: skip


# --- the CSRF sweep -------------------------------------------------------------------------------


@dataclass
class Form:
    path: Callable[[Tenant], str]
    fields: Callable[[Tenant], dict[str, str]]
    who: str = "all"
    files: bool = False


FORMS: dict[tuple[str, str], Form] = {
    ("POST", "/tasks/new/preview"): Form(lambda t: "/tasks/new/preview", lambda t: {
        "input": f"Refund 40 EUR on order {t.orders[0]}, the lamp arrived broken.", "workflow": "refund_request@1"}),
    ("POST", "/tasks"): Form(lambda t: "/tasks", lambda t: {
        "input": f"Refund 40 EUR on order {t.orders[0]}, the lamp arrived broken.", "workflow": "refund_request@1",
        "idempotency_key": secrets.token_hex(8)}, files=True),
    ("POST", "/checkpoints/{checkpoint_id}/edits"): Form(lambda t: f"/checkpoints/{t.checkpoints[0]}/edits", _edit_form),
    ("POST", "/checkpoints/{checkpoint_id}/comments"): Form(
        lambda t: f"/checkpoints/{t.checkpoints[0]}/comments", lambda t: {"body": "a comment"}),
    ("POST", "/checkpoints/{checkpoint_id}/decision"): Form(
        lambda t: f"/checkpoints/{t.checkpoints[0]}/decision", lambda t: {"decision": "approve", "comment": "ok"}),
    ("POST", "/tasks/{task_id}/cancel"): Form(lambda t: f"/tasks/{t.tasks[2]}/cancel", lambda t: {}),
    ("POST", "/catalog/preview"): Form(lambda t: "/catalog/preview", lambda t: {
        "input": f"Refund 40 EUR on order {t.orders[0]}, the lamp arrived broken.", "workflow": "refund_request@1"}),
    ("POST", "/admin/budgets"): Form(lambda t: "/admin/budgets", lambda t: {
        "scope": "tool_month", "subject": "send_email", "limit_usd": "12.00", "on_breach": "stop"}),
    ("POST", "/admin/switches"): Form(lambda t: "/admin/switches", lambda t: {
        "scope": "tool", "subject": "lookup_ticket", "active": "on", "mode": "stop", "reason": "csrf sweep"}),
    ("POST", "/admin/policies/explain"): Form(lambda t: "/admin/policies/explain", lambda t: {
        "agent": "refund_agent", "tool": "issue_refund", "args": json.dumps({"order_id": t.orders[0], "amount": 50,
        "currency": "EUR", "reason": "x"}), "facts": ""}),
    ("POST", "/admin/users"): Form(lambda t: "/admin/users", lambda t: {
        "user_id": t.people["developer"].user_id, "role": "approver", "op": "grant"}),
    ("POST", "/tenant"): Form(lambda t: "/tenant", lambda t: {"tenant": t.id}),
    ("POST", "/login"): Form(lambda t: "/login", lambda t: {
        "email": t.people["developer"].email, "password": t.people["developer"].password}, who="developer"),
    ("POST", "/logout"): Form(lambda t: "/logout", lambda t: {}, who="developer"),
    ("POST", "/account/sign-out-everywhere"): Form(lambda t: "/account/sign-out-everywhere", lambda t: {}, who="approver"),
}  # fmt: skip

# What a page form writes when it goes through (checked unchanged after each refused attempt).
FORM_AUDIT = ("web.", "user.", "task.submitted", "task.cancel_requested", "switch.flipped",
              "checkpoint.commented", "budget.set", "tenant.")  # fmt: skip
FORM_TABLES = ("membership", "tenant_budget", "kill_switch", "kill_switch_event", "checkpoint_comment",
               "checkpoint_decision", "task")  # fmt: skip


def form_state(engine: Engine, t: Tenant) -> dict[str, list[str]]:
    tables = {tb.name: tb for tb in SQLModel.metadata.sorted_tables}
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in FORM_TABLES:
            tb = tables[name]
            cols = [tb.c.id] if name == "task" else list(tb.c)
            out[name] = sorted(repr(tuple(r)) for r in conn.execute(sa_select(*cols).where(tb.c.tenant_id == t.id)))
        audit = tables["audit_event"]
        rows = conn.execute(sa_select(audit.c.action, audit.c.subject).where(audit.c.tenant_id == t.id))
        out["audit"] = sorted(repr(tuple(r)) for r in rows if str(r[0]).startswith(FORM_AUDIT))
        ws = tables["web_session"]
        users = [p.user_id for p in t.people.values()]
        out["sessions"] = sorted(repr(tuple(r)) for r in conn.execute(
            sa_select(ws.c.id, ws.c.tenant_id, ws.c.revoked_at, ws.c.csrf_token).where(ws.c.user_id.in_(users))))
    return out


VARIANTS = ("no token", "another session's token", "wrong Origin", "Origin null", "Sec-Fetch-Site cross-site",
            "another session's token in X-CSRF-Token")  # fmt: skip


def _is_csrf_refusal(status: int, text: str) -> bool:
    return status == 403 and ("CSRF" in text or "came from another site" in text)


async def csrf_sweep(app: FastAPI, http: httpx.AsyncClient, engine: Engine, t: Tenant) -> dict[str, Any]:
    """`t` must be populated (its checkpoints open, its third task waiting)."""
    forms = web_forms(app)
    uncovered = [r for r in forms if r not in FORMS]
    stale = [r for r in FORMS if r not in forms]
    for person in t.people.values():
        await sign_in(http, person)
    other = t.people["requester"]  # whose token and session stand for "another session"
    refusals: Counter[str] = Counter()
    failures: list[str] = []
    right: dict[str, int] = {}
    right_failures: list[str] = []
    checked = 0
    for route in sorted(FORMS, key=list(FORMS).index):
        if route not in forms:
            continue
        spec = FORMS[route]
        path, fields = spec.path(t), spec.fields(t)
        person = t.people[spec.who]
        files = {"attachment": ("note.txt", b"a text attachment", "text/plain")} if spec.files else None
        name = f"{route[0]} {route[1]}"
        before = await asyncio.to_thread(form_state, engine, t)
        # The sign-in form reads its token from the form only (htmx, which sends X-CSRF-Token, posts
        # only forms of a session), so the header variant does not apply to it.
        for variant in VARIANTS[:-1] if route[1] == "/login" else VARIANTS:
            if route[1] == "/login":
                cookie, token = await login_form(http)
                _, their_token = await login_form(http)
                headers = {"Cookie": f"{LOGIN_COOKIE}={cookie}"}
            else:
                headers, token, their_token = web_headers(person), person.csrf, other.csrf
            data = dict(fields)
            if variant != "no token":
                data["csrf_token"] = their_token if variant == "another session's token" else token
            if variant == "wrong Origin":
                headers["Origin"] = "https://evil.example"
            elif variant == "Origin null":
                headers["Origin"] = "null"
            elif variant == "Sec-Fetch-Site cross-site":
                headers["Sec-Fetch-Site"] = "cross-site"
            elif variant.endswith("X-CSRF-Token"):
                headers["X-CSRF-Token"] = their_token
            r = await http.post(path, data=data, files=files, headers=headers)
            checked += 1
            if r.status_code == 403:
                refusals[variant] += 1
            else:
                failures.append(f"{name} with {variant}: {r.status_code}, not 403 {r.text[:160]!r}")
        after = await asyncio.to_thread(form_state, engine, t)
        if changed_tables(before, after):
            failures.append(f"{name}: refused requests changed {changed_tables(before, after)}")
        # the right token: not refused for CSRF
        if route[1] == "/login":
            cookie, token = await login_form(http)
            headers = {"Cookie": f"{LOGIN_COOKIE}={cookie}"}
        else:
            headers, token = web_headers(person), person.csrf
        r = await http.post(path, data={**fields, "csrf_token": token}, files=files, headers=headers)
        right[name] = r.status_code
        if _is_csrf_refusal(r.status_code, r.text) or r.status_code in (401, 404) or r.status_code >= 500:
            right_failures.append(f"{name} with the right token: {r.status_code} {r.text[:200]!r}")
    return {
        "forms": len(forms),
        "covered": len(forms) - len(uncovered),
        "uncovered": [f"{m} {p}" for m, p in uncovered],
        "stale_fixtures": [f"{m} {p}" for m, p in stale],
        "refused_requests": checked,
        "refusals": dict(refusals),
        "variants": list(VARIANTS),
        "right_token": right,
        "failures": failures + right_failures,
        "refusal_failures": failures,
        "right_token_failures": right_failures,
    }


def csrf_rows(r: dict[str, Any]) -> list[Row]:
    s = "csrf"
    n = len(r["variants"])
    bad, refused = r["refusal_failures"], r["right_token_failures"]
    return [
        Row(s, "every state-changing form of the web UI is in the sweep",
            f"{r['covered']}/{r['forms']} forms" + (f", missing {', '.join(r['uncovered'])}" if r["uncovered"] else ""),
            not r["uncovered"]),
        Row(s, f"no token, another session's token, wrong or null Origin, cross-site ({n} ways): 403, nothing changed",
            f"{sum(r['refusals'].values())}/{r['refused_requests']} refused, {len(bad)} failed", not bad),
        Row(s, "with the session's own token the form is not refused for CSRF",
            f"{len(r['right_token']) - len(refused)}/{len(r['right_token'])} forms", not refused),
    ]  # fmt: skip


# --- schemathesis over the live API ---------------------------------------------------------------

# Schemathesis failure codes (`schemathesis explain`), grouped as the rows report them.
SERVER_ERROR = {"ST101", "ST102"}  # 5xx
SCHEMA_VIOLATION = {f"ST{n}" for n in range(103, 112)}  # status, content type, headers, body not as declared
SLOW = {"ST112"}  # over the response time limit
AUTH = {"ST401", "ST402"}  # missing credentials accepted; one user's object shown to another
CONTRACT = {"ST201", "ST203", "ST204", "ST205", "ST301", "ST302"}  # requests, methods, Allow, resources
REJECTED_VALID = {"ST202"}  # a schema-valid request refused (4xx) by a rule the schema does not state


def fuzz_tenant(engine: Engine) -> dict[str, str]:
    """A tenant of its own for the fuzzer: a requester and an admin (who is an approver too)."""
    tenant = f"fuzz{secrets.token_hex(4)}"
    tokens: dict[str, str] = {}
    with session_scope(engine) as session:
        ensure_tenant(session, tenant, "schemathesis")
        for role, roles in [("requester", ["requester"]), ("admin", ["admin", "approver"])]:
            user = ensure_user(session, tenant, f"{role}@{tenant}.example", role.title(), roles)
            session.flush()
            tokens[role] = ensure_token(session, user, tenant)
    return tokens


async def schemathesis_run(
    base_url: str, token: str, *, examples: int, workdir: Path, limit_s: float = REQUEST_TIMEOUT, seed: int = 11
) -> dict[str, Any]:
    """`schemathesis run --checks all` over the live OpenAPI as the token's holder; the JSON report."""
    report = workdir / f"report-{secrets.token_hex(3)}.json"
    log = workdir / f"{report.stem}.log"
    config = workdir / "schemathesis.toml"
    # 413 (a body over FRONTDESK_MAX_INPUT_BYTES) refuses invalid data as surely as 400 or 422 do.
    config.write_text('[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "403", "404", '
                      '"405", "406", "409", "413", "415", "422", "428", "429", "5xx"]\n')  # fmt: skip
    argv = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{base_url}/openapi.json",
        "--checks", "all", "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(examples), "--request-timeout", str(limit_s), "--seed", str(seed),
        "--phases", "examples,coverage,fuzzing,stateful", "--workers", "2", "--no-color",
        "--suppress-health-check", "all", "--generation-database", "none", "--continue-on-failure",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=asyncio.subprocess.STDOUT)
        await proc.wait()
    doc = json.loads(report.read_text()) if report.exists() else {}
    return {"exit_code": proc.returncode, "seconds": round(time.monotonic() - started, 1), "log": str(log),
            "report": doc}  # fmt: skip


def summarize_schemathesis(doc: dict[str, Any]) -> dict[str, Any]:
    failures = doc.get("failures") or []
    errors = doc.get("errors") or []

    def count(codes: set[str]) -> int:
        return sum(int(f.get("count", 1)) for f in failures if f.get("code") in codes)

    def listed(codes: set[str]) -> list[str]:
        return [f"{f.get('code')} {f.get('title')} x{f.get('count')}: {', '.join(f.get('operations') or [])}"
                for f in failures if f.get("code") in codes]  # fmt: skip

    timeouts = sum(int(e.get("count", 1)) for e in errors if re.search(r"time(d)? ?out", str(e.get("title")), re.I))
    known = SERVER_ERROR | SCHEMA_VIOLATION | SLOW | AUTH | CONTRACT | REJECTED_VALID
    return {
        "cases": (doc.get("test_cases") or {}).get("generated", 0),
        "operations": (doc.get("operations") or {}).get("tested", 0),
        "server_errors": count(SERVER_ERROR),
        "schema_violations": count(SCHEMA_VIOLATION),
        "hangs": timeouts + count(SLOW),
        "auth_failures": count(AUTH),
        "contract_failures": count(CONTRACT),
        "rejected_valid": count(REJECTED_VALID),
        "unclassified": count({str(f.get("code")) for f in failures} - known),
        "listed": listed(known | {str(f.get("code")) for f in failures}),
        "rejected_valid_operations": sorted({o for f in failures if f.get("code") in REJECTED_VALID
                                             for o in f.get("operations") or []}),
        "errors": [f"{e.get('title')} x{e.get('count')}" for e in errors],
        "complete": doc.get("complete", False),
    }


# --- the scenarios: each on a live stack of its own (reliability/stack.py) -----------------------


async def _on_stack(worker_code: Path | None, body: Callable[[Any, httpx.AsyncClient, FastAPI], Awaitable[dict[str, Any]]],
                    env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    from orchestrator.app import create_app
    from reliability.stack import Stack

    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    stack = Stack(worker_code=worker_code)
    try:
        await stack.start()
        app = create_app(stack.settings)  # the same code the API process runs: its route table
        async with new_client(f"http://127.0.0.1:{stack.settings.api_port}") as http:
            result = await body(stack, http, app)
        app.state.frontdesk.engine.dispose()
        result["logs"] = str(stack.root / "logs")
        return result
    finally:
        await stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def run_cross_tenant(worker_code: Path | None = None) -> dict[str, Any]:
    a_id, b_id = f"xa{secrets.token_hex(3)}", f"xb{secrets.token_hex(3)}"
    a_marker, b_marker = new_marker(), new_marker()
    rule = f"{a_marker}-own-rule"
    policies = policies_with_rule(Path(tempfile.mkdtemp(prefix="frontdesk-policies-")) / "policies", a_id, rule)

    async def body(stack: Any, http: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
        a = await asyncio.to_thread(make_tenant, stack.engine, a_id, a_marker)
        b = await asyncio.to_thread(make_tenant, stack.engine, b_id, b_marker)
        await asyncio.gather(populate(http, a), populate(http, b))
        return await cross_tenant(app, http, stack.engine, a, b, temporal=stack.client, a_rule=rule)

    return await _on_stack(worker_code, body, {"FRONTDESK_POLICIES_DIR": str(policies)})


async def run_csrf(worker_code: Path | None = None) -> dict[str, Any]:
    async def body(stack: Any, http: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
        t = await asyncio.to_thread(make_tenant, stack.engine, f"xc{secrets.token_hex(3)}", new_marker())
        await populate(http, t)
        return await csrf_sweep(app, http, stack.engine, t)

    return await _on_stack(worker_code, body)


async def run_schemathesis(examples: int, worker_code: Path | None = None) -> dict[str, Any]:
    async def body(stack: Any, http: httpx.AsyncClient, app: FastAPI) -> dict[str, Any]:
        tokens = await asyncio.to_thread(fuzz_tenant, stack.engine)
        url = f"http://127.0.0.1:{stack.settings.api_port}"
        out: dict[str, Any] = {"examples_per_operation": examples, "roles": {}}
        for role, token in tokens.items():
            run = await schemathesis_run(url, token, examples=examples, workdir=stack.root)
            out["roles"][role] = {**summarize_schemathesis(run["report"]), "exit_code": run["exit_code"],
                                  "seconds": run["seconds"], "log": run["log"]}  # fmt: skip
        return out

    return await _on_stack(worker_code, body)


def schemathesis_rows(r: dict[str, Any]) -> list[Row]:
    s = "schemathesis"
    rows = []
    for role, x in r["roles"].items():
        where = f"{x['cases']} cases, {x['operations']} operations, as {role}"
        ran = x["cases"] > 0 and x["complete"] and not x["errors"]
        rows += [
            Row(s, f"all checks as {role}: 0 server errors", f"{x['server_errors']} in {where}",
                x["server_errors"] == 0 and ran),
            Row(s, f"all checks as {role}: 0 schema violations (status, content type, headers, body)",
                f"{x['schema_violations']} in {where}", x["schema_violations"] == 0 and ran),
            Row(s, f"all checks as {role}: 0 hangs (every answer within {REQUEST_TIMEOUT:.0f} s)",
                f"{x['hangs']} in {where}" + (f"; errors {x['errors']}" if x["errors"] else ""), x["hangs"] == 0 and ran),
            Row(s, f"all checks as {role}: no request without credentials accepted, no other user's object shown",
                f"{x['auth_failures']} in {where}", x["auth_failures"] == 0 and ran),
            Row(s, f"all checks as {role}: methods, Allow, required headers, created resources as declared",
                f"{x['contract_failures'] + x['unclassified']} in {where}",
                x["contract_failures"] == 0 and x["unclassified"] == 0 and ran),
            # Informational: a 422 for a rule the schema cannot state (a role name, a comment that
            # request_changes needs, a subject a tool switch needs) is a documented answer, not a fault.
            Row(s, f"as {role}: schema-valid requests refused with a documented 4xx (informational)",
                f"{x['rejected_valid']} on {len(x['rejected_valid_operations'])} operations", True),
        ]  # fmt: skip
    return rows


def _cross(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    return {"people_per_tenant": len(PEOPLE)}, lambda code: run_cross_tenant(code)


def _csrf(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    return {"variants": len(VARIANTS)}, lambda code: run_csrf(code)


def _schemathesis(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = {"examples_per_operation": 3 if quick else 100}
    return size, lambda code: run_schemathesis(size["examples_per_operation"], code)


SCENARIOS: dict[str, tuple[Setup, ToRows]] = {
    "cross-tenant": (_cross, cross_tenant_rows),
    "csrf": (_csrf, csrf_rows),
    "schemathesis": (_schemathesis, schemathesis_rows),
}
