"""The admin pages (budgets, kill switches, policies with explain, people and roles), through the
real pages as a signed-in person.

The database is shared with other tests: budgets and switches are changed in the second demo tenant
`acme-eu` (Ada is its admin; no other test runs tasks there) on subjects unique to the test, and
everything a test changes is undone at its end.
"""

from __future__ import annotations

import csv
import html
import secrets
from typing import Any

import httpx
import pytest
from markupsafe import escape
from repo_paths import SHIPPED_POLICIES
from sqlmodel import col, delete, select

from orchestrator.db import session_scope
from orchestrator.models import AuditEvent, KillSwitch, Membership, TenantBudget
from orchestrator.web import admin
from webui.conftest import Browser

ADMIN_PAGES = ["/admin/budgets", "/admin/switches", "/admin/policies", "/admin/users"]


def rule_ids() -> list[str]:
    with (SHIPPED_POLICIES / "tool_policy.csv").open() as f:
        rows = [r for r in csv.reader(f, skipinitialspace=True) if r and not r[0].startswith("#")]
    return [r[-1].strip() for r in rows if r[0] == "p"]


async def in_acme_eu(b: Browser) -> Browser:
    r = await b.post("/tenant", {"tenant": "acme-eu"})
    assert r.status_code == 303, r.text[:300]
    await b.refresh_csrf()
    return b


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# --- who may see them ------------------------------------------------------------------------------


async def test_a_requester_is_refused_every_admin_page_and_form(browser_for: Any) -> None:
    riley = await browser_for("riley")
    for path in ADMIN_PAGES:
        r = await riley.get(path)
        assert r.status_code == 403, path
        assert "This page needs a role you do not hold" in r.text and "requester" in r.text
    posts = {
        "/admin/budgets": {"scope": "tenant_month", "limit_usd": "1"},
        "/admin/switches": {"scope": "tenant", "active": "on", "reason": "x"},
        "/admin/policies/explain": {"agent": "refund_agent", "tool": "issue_refund", "args": "{}"},
        "/admin/users": {"user_id": "x", "role": "admin", "op": "grant"},
    }
    for path, data in posts.items():
        assert (await riley.post(path, data)).status_code == 403, path
    nav = (await riley.get("/account")).text
    assert "/admin/" not in nav  # the navigation offers none of them


async def test_forms_without_the_csrf_token_are_refused(browser_for: Any, sqlite_db: Any) -> None:
    ada = await browser_for("ada")
    subject = unique("nocsrf")
    posts = {
        "/admin/budgets": {"scope": "agent_month", "subject": subject, "limit_usd": "5"},
        "/admin/switches": {"scope": "agent", "subject": subject, "active": "on", "reason": "x"},
        "/admin/policies/explain": {"agent": "refund_agent", "tool": "issue_refund", "args": "{}"},
        "/admin/users": {"user_id": sqlite_db.user_ids["dana"], "role": "approver", "op": "grant"},
    }
    for path, data in posts.items():
        r = await ada.client.post(path, data=data)
        assert r.status_code == 403 and "CSRF" in r.text, path
        r = await ada.client.post(path, data={**data, "csrf_token": "forged"})
        assert r.status_code == 403, path
    with session_scope(sqlite_db.engine) as s:
        assert s.exec(select(TenantBudget).where(TenantBudget.subject == subject)).first() is None
        assert s.exec(select(KillSwitch).where(KillSwitch.subject == subject)).first() is None
        held = s.exec(select(Membership.role).where(Membership.user_id == sqlite_db.user_ids["dana"])).all()
        assert held == ["developer"]


# --- budgets ---------------------------------------------------------------------------------------


async def test_a_limit_set_through_the_form_is_listed_with_a_bar(browser_for: Any, sqlite_db: Any) -> None:
    ada = await in_acme_eu(await browser_for("ada"))
    subject = unique("webui_agent")
    try:
        r = await ada.post(
            "/admin/budgets",
            {"scope": "agent_month", "subject": subject, "limit_usd": "12.50", "on_breach": "pause"},
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/budgets?saved=agent_month")
        page = await ada.get(r.headers["location"])
        assert page.status_code == 200
        assert f"Saved: agent_month <code>{subject}</code> — limit $12.50, on breach pause." in page.text
        row = page.text.split(f"<td><code>{subject}</code></td>", 1)[1].split("</tr>", 1)[0]
        assert "$12.50" in row and "pause" in row and "admin" in row
        assert '<meter min="0" max="12.500000000"' in row and 'aria-label="agent_month ' in row
        assert "0% of the limit used" in row
        # the whole tenant's month and the per-task maximum are always listed
        assert "<td>tenant_month</td>" in page.text and "<td>task_max</td>" in page.text
    finally:
        with session_scope(sqlite_db.engine) as s:
            s.exec(delete(TenantBudget).where(col(TenantBudget.subject) == subject))  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "form, message",
    [
        ({"scope": "agent_month", "subject": "webui_kept", "limit_usd": "lots"}, "must be a USD amount"),
        ({"scope": "agent_month", "subject": "", "limit_usd": "3"}, "agent_month needs a subject"),
        ({"scope": "tenant_month", "subject": "webui_kept", "limit_usd": "3"}, "leave the subject empty"),
        ({"scope": "agent_month", "subject": "webui_kept", "limit_usd": ""}, "enter the limit in USD"),
        ({"scope": "forever", "subject": "", "limit_usd": "3"}, "scope must be one of"),
    ],
)
async def test_bad_budget_input_re_renders_the_form(
    browser_for: Any, sqlite_db: Any, form: dict[str, str], message: str
) -> None:
    ada = await in_acme_eu(await browser_for("ada"))
    r = await ada.post("/admin/budgets", form)
    assert r.status_code == 422
    assert "The limit was not saved:" in r.text and message in html.unescape(r.text)
    assert (
        f'name="subject" type="text" maxlength="120" list="subject-names" value="{form["subject"]}"' in r.text
    )
    assert f'value="{form["limit_usd"]}"' in r.text
    with session_scope(sqlite_db.engine) as s:
        assert s.exec(select(TenantBudget).where(TenantBudget.subject == "webui_kept")).first() is None


async def test_a_bad_month_is_a_422_with_what_was_typed(browser_for: Any) -> None:
    ada = await browser_for("ada")
    r = await ada.get("/admin/budgets", params={"month": "2026-13"})
    assert r.status_code == 422
    assert "The month must be a year and month such as" in r.text and "&#39;2026-13&#39; is not one" in r.text
    assert 'value="2026-13"' in r.text
    ok = await ada.get("/admin/budgets", params={"month": "2020-01"})
    assert ok.status_code == 200 and "Limits and spend, 2020-01" in ok.text
    assert "No tasks with a budget were submitted in 2020-01." in ok.text


# --- kill switches ---------------------------------------------------------------------------------


async def test_a_switch_turned_on_is_listed_active_and_in_the_history(
    browser_for: Any, sqlite_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[str | None] = []

    async def wake(state: Any, tenant_id: str | None) -> int:
        woken.append(tenant_id)
        return 0

    monkeypatch.setattr(admin, "wake_waiting_tasks", wake)
    ada = await in_acme_eu(await browser_for("ada"))
    subject = unique("webui_tool")
    reason = f"checking the page {subject}"
    try:
        r = await ada.post(
            "/admin/switches",
            {"scope": "tool", "subject": subject, "mode": "pause", "reason": reason, "active": "on"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/admin/switches"
        assert woken == ["acme-eu"]  # the tenant's waiting tasks are told, as after POST /api/switches
        page = (await ada.get("/admin/switches")).text
        listed, history = page.split("<h2>History</h2>", 1)
        row = listed.split(f"<code>{subject}</code>", 1)[1].split("</tr>", 1)[0]
        assert '<span class="badge deny">on</span>' in row and "pause" in row and reason in row
        assert "Ada Admin" in row and 'name="active" value="off"' in row
        assert reason in history
        assert 'value="global"' not in page  # the global switch needs switch:flip_global

        r = await ada.post("/admin/switches", {"scope": "tool", "subject": subject, "active": "off"})
        assert r.status_code == 303
        page = (await ada.get("/admin/switches")).text
        listed, history = page.split("<h2>History</h2>", 1)
        row = listed.split(f"<code>{subject}</code>", 1)[1].split("</tr>", 1)[0]
        assert '<span class="badge ok">off</span>' in row
        flips = [chunk.split("</tr>", 1)[0] for chunk in history.split(f"<code>{subject}</code>")[1:]]
        assert len(flips) == 2
        assert "badge ok" in flips[0] and "badge deny" in flips[1]  # newest first
        assert woken == ["acme-eu", "acme-eu"]
    finally:
        sqlite_db_switch_off(sqlite_db, subject)


def sqlite_db_switch_off(db: Any, subject: str) -> None:
    with session_scope(db.engine) as s:
        for row in s.exec(select(KillSwitch).where(KillSwitch.subject == subject)):
            row.active = False
            s.add(row)


@pytest.mark.parametrize(
    "form, message",
    [
        ({"scope": "agent", "subject": "webui_kept_agent", "active": "on", "reason": ""}, "give a reason"),
        ({"scope": "agent", "subject": "", "active": "on", "reason": "kept reason"}, "needs a subject"),
        ({"scope": "tool", "subject": "bad name!", "active": "on", "reason": "kept reason"}, "is invalid"),
        (
            {"scope": "tool", "subject": "webui_kept_tool", "active": "", "reason": "kept reason"},
            "Turn on or Turn off",
        ),
    ],
)
async def test_bad_switch_input_re_renders_the_form(
    browser_for: Any, form: dict[str, str], message: str
) -> None:
    ada = await in_acme_eu(await browser_for("ada"))
    r = await ada.post("/admin/switches", {"mode": "pause", **form})
    assert r.status_code == 422
    assert "The switch was not changed:" in r.text and message in r.text
    assert f'list="switch-names" value="{escape(form["subject"])}"' in r.text
    assert form["reason"] in r.text and '<option value="pause" selected>' in r.text


async def test_only_platform_admins_flip_the_global_switch(browser_for: Any) -> None:
    ada = await browser_for("ada")
    r = await ada.post("/admin/switches", {"scope": "global", "active": "on", "reason": "no"})
    assert r.status_code == 403 and "switch:flip_global" in r.text


# --- policies --------------------------------------------------------------------------------------


async def test_the_policy_page_lists_every_rule(browser_for: Any) -> None:
    for who in ("ada", "dana"):  # developers hold policy:read too
        page = await (await browser_for(who)).get("/admin/policies")
        assert page.status_code == 200
        for rule_id in rule_ids():
            assert f"<td><code>{rule_id}</code>" in page.text
        assert '<span class="badge deny">deny</span>' in page.text
        assert "2 distinct approver(s)" in page.text  # the approval summary of refund-large-two-approvers
        assert (
            'hx-post="https://frontdesk/admin/policies/explain"' in page.text
            and 'hx-target="#explain-result"' in page.text
        )


async def test_explain_without_javascript_shows_the_decision_and_every_rule(browser_for: Any) -> None:
    ada = await browser_for("ada")
    args = '{"order_id": "ORD-1", "amount": 250}'
    r = await ada.post(
        "/admin/policies/explain", {"agent": "refund_agent", "tool": "issue_refund", "args": args}
    )
    assert r.status_code == 200 and "<!doctype html>" in r.text
    result = r.text.split('id="explain-result"', 1)[1]
    assert 'Decision: <span class="badge approve">approve</span>' in result
    assert "<dt>Rule</dt><dd><code>refund-needs-approval</code></dd>" in result
    considered = result.split("Every rule considered", 1)[1]
    for rule_id in rule_ids():
        assert f"<code>{rule_id}</code>" in considered
    row = considered.split("<code>refund-needs-approval</code>", 1)[1].split("</tr>", 1)[0]
    assert "<strong>yes</strong>" in row
    row = considered.split("<code>refund-over-limit</code>", 1)[1].split("</tr>", 1)[0]
    assert "<td>no</td>" in row
    assert escape(args) in r.text  # the form keeps what was typed


async def test_explain_over_htmx_answers_a_fragment(browser_for: Any) -> None:
    dana = await browser_for("dana")
    r = await dana.post(
        "/admin/policies/explain",
        {"agent": "refund_agent", "tool": "issue_refund", "args": '{"amount": 50}',
         "facts": '{"data_classification": "internal"}'},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert r.status_code == 200 and "<html" not in r.text
    assert 'badge allow">allow</span>' in r.text and "<code>refund-small</code></dd>" in r.text
    assert "<code>data_classification=internal</code>" in r.text


@pytest.mark.parametrize(
    "form, message",
    [
        ({"args": '{"amount": 250'}, "Arguments must be a JSON object: Expecting"),
        ({"args": "[250]"}, "Arguments must be a JSON object: got list"),
        ({"args": "{}", "facts": "internal"}, "Facts must be a JSON object:"),
        ({"args": "{}", "facts": '{"colour": "red"}'}, "facts.colour: Extra inputs are not permitted"),
        ({"args": "{}", "agent": " "}, "Name both the agent and the tool"),
    ],
)
async def test_bad_explain_input_is_a_422_with_the_form_kept(
    browser_for: Any, form: dict[str, str], message: str
) -> None:
    ada = await browser_for("ada")
    data = {"agent": "refund_agent", "tool": "issue_refund", **form}
    r = await ada.post("/admin/policies/explain", data)
    assert r.status_code == 422
    assert message in html.unescape(r.text)
    assert f"{escape(data['args'])}</textarea>" in r.text
    fragment = await ada.post("/admin/policies/explain", data, headers={"HX-Request": "true"})
    assert (
        fragment.status_code == 422
        and "<html" not in fragment.text
        and message in html.unescape(fragment.text)
    )


# --- people ----------------------------------------------------------------------------------------


def people_row(page: str, name: str) -> str:
    return page.split(f"<td>{name}", 1)[1].split("</tr>", 1)[0]


async def test_the_people_page_lists_only_this_tenant(browser_for: Any) -> None:
    page = (await (await browser_for("ada")).get("/admin/users")).text
    for name, email, role in [
        ("Riley Requester", "riley@acme.example", "requester"),
        ("Avery Approver", "avery@acme.example", "approver"),
        ("Ada Admin", "ada@acme.example", "admin"),
        ("Dana Developer", "dana@acme.example", "developer"),
    ]:
        row = people_row(page, name)
        assert email in row and f'<span class="badge ok">{role}</span>' in row
    assert "gina@globex.example" not in page


async def test_a_role_granted_to_dana_shows_counts_for_her_token_and_is_revoked(
    browser_for: Any, sqlite_db: Any, web_app: Any
) -> None:
    ada = await browser_for("ada")
    dana_id = sqlite_db.user_ids["dana"]
    dana_api = {"Authorization": f"Bearer {sqlite_db.tokens['dana']}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk"
    ) as api:
        try:
            assert (await api.get("/api/checkpoints", headers=dana_api)).status_code == 403
            r = await ada.post("/admin/users", {"user_id": dana_id, "role": "approver", "op": "grant"})
            assert r.status_code == 303 and r.headers["location"] == f"/admin/users?changed={dana_id}"
            page = (await ada.get(r.headers["location"])).text
            assert "Dana Developer now holds: approver, developer." in page
            row = people_row(page, "Dana Developer")
            assert (
                '<span class="badge ok">approver</span>' in row
                and "Revoke approver from Dana Developer" in row
            )
            # roles are read per request: her API token is an approver's now
            assert (await api.get("/api/checkpoints", headers=dana_api)).status_code == 200

            r = await ada.post("/admin/users", {"user_id": dana_id, "role": "approver", "op": "revoke"})
            assert r.status_code == 303
            row = people_row((await ada.get(r.headers["location"])).text, "Dana Developer")
            assert "approver</span>" not in row and '<span class="badge ok">developer</span>' in row
            assert (await api.get("/api/checkpoints", headers=dana_api)).status_code == 403
        finally:
            with session_scope(sqlite_db.engine) as s:
                s.exec(
                    delete(Membership).where(
                        col(Membership.user_id) == dana_id, col(Membership.role) == "approver"
                    )
                )  # type: ignore[call-overload]
    with session_scope(sqlite_db.engine) as s:
        events = s.exec(
            select(AuditEvent.action, AuditEvent.actor)
            .where(AuditEvent.tenant_id == "acme", AuditEvent.subject == f"user:{dana_id}")
            .order_by(col(AuditEvent.seq).desc())
            .limit(2)
        ).all()
    assert events == [
        ("user.role_revoked", sqlite_db.user_ids["ada"]),
        ("user.role_granted", sqlite_db.user_ids["ada"]),
    ]


@pytest.mark.parametrize(
    "who, role, op, status, message",
    [
        ("ada", "admin", "revoke", 409, "You cannot revoke your own admin role"),
        ("dana", "developer", "revoke", 409, "developer is Dana Developer&#39;s only role in this tenant"),
        ("riley", "approver", "revoke", 409, "Riley Requester does not hold the approver role"),
        ("riley", "platform_admin", "grant", 422, "Role &#39;platform_admin&#39; cannot be granted here"),
        ("riley", "", "grant", 422, "Choose a role"),
        ("riley", "approver", "promote", 422, "Choose Grant or Revoke"),
    ],
)
async def test_refused_role_changes_say_why_and_change_nothing(
    browser_for: Any, sqlite_db: Any, who: str, role: str, op: str, status: int, message: str
) -> None:
    ada = await browser_for("ada")
    before = roles_in_acme(sqlite_db)
    r = await ada.post("/admin/users", {"user_id": sqlite_db.user_ids[who], "role": role, "op": op})
    assert r.status_code == status and message in r.text
    assert '<div class="alert" role="alert" id="roles-error">' in r.text
    assert roles_in_acme(sqlite_db) == before


def roles_in_acme(db: Any) -> list[tuple[str, str]]:
    with session_scope(db.engine) as s:
        rows = s.exec(select(Membership.user_id, Membership.role).where(Membership.tenant_id == "acme")).all()
    return sorted(rows)


async def test_another_tenants_user_is_not_found(browser_for: Any, sqlite_db: Any) -> None:
    ada = await browser_for("ada")
    for user_id in (sqlite_db.user_ids["gina"], "usr_nobody"):
        r = await ada.post("/admin/users", {"user_id": user_id, "role": "requester", "op": "grant"})
        assert r.status_code == 404 and "<h1>Not found</h1>" in r.text and "in this tenant" in r.text
    with session_scope(sqlite_db.engine) as s:
        gina = s.exec(
            select(Membership.tenant_id).where(Membership.user_id == sqlite_db.user_ids["gina"])
        ).all()
    assert set(gina) == {"globex"}
