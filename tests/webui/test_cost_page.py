"""The Cost page and GET /api/cost over ASGI: who may see them, bad `weeks`, the empty state,
and the page's tables carry exactly the API's numbers.

This module has its own seeded database (it overrides `sqlite_db`): the tasks it inserts into
tenant acme must not show up in other tests' task lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from conftest import SeededDb, _seed

from orchestrator.budgets.rules import usd
from orchestrator.db import session_scope
from orchestrator.models import ModelCall, Task

SVG = re.compile(r'<svg class="chart"[^>]*role="img"[^>]*aria-labelledby="([^" ]+)-title [^"]+-desc"')


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDb]:
    root = tmp_path_factory.mktemp("cost-sqlite")
    db = _seed(f"sqlite:///{root / 'frontdesk.db'}", root)
    _insert_costs(db)
    yield db
    db.engine.dispose()


def _insert_costs(db: SeededDb) -> None:
    now = datetime.now(UTC)
    rows: list[tuple[str, str, str, str | None, datetime, list[tuple[str, str | None, str, bool, bool]]]] = [
        # tenant, workflow, status, outcome, created, [(tier, model served, cost, estimated, ok)]
        ("acme", "refund_request@1", "completed", "resolved", now - timedelta(days=1), [
            ("tier-open", "demo-open", "0.0042", False, True),
            ("tier-open", "demo-open", "0.0010", False, False),
        ]),
        ("acme", "refund_request@1", "completed", "unresolved", now - timedelta(days=1), [
            ("tier-frontier", None, "0.0300", True, True),
        ]),
        ("acme", "ticket_triage@1", "completed", "resolved", now - timedelta(days=15), [
            ("tier-slm", "demo-slm", "0.000125", False, True),
        ]),
        ("acme", "ticket_triage@1", "failed", None, now - timedelta(days=15), []),
        ("globex", "refund_request@1", "completed", "resolved", now - timedelta(days=1), [
            ("tier-frontier", "demo-frontier", "9.99", False, True),
        ]),
    ]  # fmt: skip
    with session_scope(db.engine) as s:
        for n, (tenant, workflow, status, outcome, created, calls) in enumerate(rows):
            name, version = workflow.split("@")
            requester = db.user_ids["riley" if tenant == "acme" else "gina"]
            task = Task(
                tenant_id=tenant,
                requester_id=requester,
                workflow_name=name,
                workflow_version=version,
                input_text="cost test",
                definition_json="{}",
                status=status,
                outcome=outcome,
                created_at=created,
            )
            s.add(task)
            s.flush()
            for attempt, (tier, served, cost, estimated, ok) in enumerate(calls, 1):
                s.add(
                    ModelCall(
                        tenant_id=tenant,
                        task_id=task.id,
                        step="s",
                        agent="a",
                        turn=1,
                        request_id=f"cost-{n}",
                        attempt=attempt,
                        tier=tier,
                        model_served=served,
                        cost_usd=D(cost),
                        cost_estimated=estimated,
                        prompt_tokens=100,
                        completion_tokens=10,
                        ok=ok,
                    )
                )


async def api(app: Any, db: SeededDb, who: str | None, query: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {db.tokens[who]}"} if who else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as c:
        return await c.get(f"/api/cost{query}", headers=headers)


class Tables(HTMLParser):
    """Cell texts of every <table id=…>, row by row (header cells included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return {k: rows[1:] for k, rows in parser.tables.items()}  # without the header row


def money(value: str | None) -> str:
    return "—" if value is None else usd(D(value))


async def test_api_needs_cost_read(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    assert (await api(web_app, sqlite_db, None)).status_code == 401
    for who in ("riley", "avery", "dana"):
        r = await api(web_app, sqlite_db, who)
        assert r.status_code == 403, who
        assert "cost:read" in r.json()["detail"]
    assert (await api(web_app, sqlite_db, "ada")).status_code == 200


@pytest.mark.parametrize("weeks", ["0", "53", "-3"])
async def test_api_refuses_weeks_out_of_range(web_app, sqlite_db, weeks: str) -> None:  # type: ignore[no-untyped-def]
    r = await api(web_app, sqlite_db, "ada", f"?weeks={weeks}")
    assert r.status_code == 422
    body = r.json()
    assert body["title"] == "Invalid request"
    assert "weeks must be a whole number from 1 to 52" in body["detail"]


async def test_api_refuses_weeks_that_are_not_a_number(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    r = await api(web_app, sqlite_db, "ada", "?weeks=lots")
    assert r.status_code == 422 and "weeks" in r.json()["detail"]


async def test_api_report_counts_only_the_tenant_and_every_attempt(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    r = await api(web_app, sqlite_db, "ada", "?weeks=8")
    assert r.status_code == 200
    data = r.json()
    assert data["tenant_id"] == "acme" and data["weeks"] == 8 and len(data["by_week"]) == 8
    totals = data["totals"]
    counts = [totals[k] for k in ("tasks", "resolved", "model_calls", "failed_calls")]
    assert counts == [4, 2, 4, 1]
    assert totals["spend_usd"] == "0.035325"  # globex's 9.99 is not here
    assert totals["cost_per_resolved_usd"] == "0.0176625"
    assert totals["estimated_share"] == 0.8493  # 0.03 / 0.035325
    by_wf = {w["workflow"]: w for w in data["by_workflow"]}
    # refund_request: 1 resolved carries 0.0052 of its own plus the unresolved task's 0.03
    assert by_wf["refund_request@1"]["cost_per_resolved_usd"] == "0.0352"
    assert by_wf["ticket_triage@1"]["cost_per_resolved_usd"] == "0.000125"
    assert [t["tier"] for t in data["by_tier"]] == ["tier-frontier", "tier-open", "tier-slm"]
    assert data["by_tier"][0]["models"] == [{"model": "unknown", "calls": 1, "spend_usd": "0.03"}]
    assert (await api(web_app, sqlite_db, "ada", "?weeks=52")).json()["totals"] == totals


async def test_page_draws_three_charts_and_its_tables_match_the_api(web_app, sqlite_db, browser_for) -> None:  # type: ignore[no-untyped-def]
    ada = await browser_for("ada")
    page = await ada.get("/cost?weeks=8")
    assert page.status_code == 200
    html = page.text
    assert SVG.findall(html) == ["chart-workflow", "chart-week", "chart-tier"]
    for chart in ("chart-workflow", "chart-week", "chart-tier"):
        assert f'<title id="{chart}-title">' in html and f'<desc id="{chart}-desc">' in html
    assert "style=" not in html and "<style" not in html  # the CSP forbids inline styles
    assert "with the demo model they are simulated" in html
    assert 'href="/cost"' in html  # the navigation offers the page

    data = (await api(web_app, sqlite_db, "ada", "?weeks=8")).json()
    tables = tables_of(html)
    assert tables["table-workflow"] == [
        [
            w["workflow"],
            str(w["tasks"]),
            str(w["resolved"]),
            str(w["unresolved"]),
            str(w["escalated"]),
            str(w["without_outcome"]),
            money(w["spend_usd"]),
            money(w["spend_not_resolved_usd"]),
            money(w["cost_per_resolved_usd"]),
            "—" if w["estimated_share"] is None else f"{w['estimated_share'] * 100:.1f}%",
        ]
        for w in data["by_workflow"]
    ]
    assert tables["table-week"] == [
        [w["week"], w["starts"][:10], str(w["tasks"]), str(w["resolved"]), money(w["spend_usd"]),
         money(w["cost_per_resolved_usd"])]
        for w in data["by_week"]
    ]  # fmt: skip
    assert [row[:6] for row in tables["table-tier"]] == [
        [t["tier"], str(t["calls"]), str(t["failed_calls"]), str(t["prompt_tokens"]),
         str(t["completion_tokens"]), money(t["spend_usd"])]
        for t in data["by_tier"]
    ]  # fmt: skip
    assert "$0.0176625" in html and "2 of 4" in html  # the totals
    # One bar per workflow and per tier, one column slot per week (a week with no resolved task
    # draws none), and each chart's bars scale to its highest value.
    workflow_svg = html[
        html.index('id="chart-workflow-title"') : html.index("</svg>", html.index("chart-workflow"))
    ]
    assert workflow_svg.count("<rect") == 2
    assert "Highest: refund_request@1 at $0.0352." in workflow_svg


async def test_page_keeps_a_bad_weeks_value_and_says_what_to_enter(browser_for) -> None:  # type: ignore[no-untyped-def]
    ada = await browser_for("ada")
    for raw, message in (("lots", "is not a number of weeks"), ("0", "from 1 to 52"), ("99", "from 1 to 52")):
        page = await ada.get(f"/cost?weeks={raw}")
        assert page.status_code == 422
        assert message in page.text and 'role="alert"' in page.text
        assert f'value="{raw}"' in page.text and 'aria-invalid="true"' in page.text
        assert "<svg" not in page.text
    one = await ada.get("/cost?weeks=1")
    assert one.status_code == 200 and len(tables_of(one.text)["table-week"]) == 1


async def test_page_empty_state_in_a_tenant_without_tasks(browser_for) -> None:  # type: ignore[no-untyped-def]
    ada = await browser_for("ada")
    assert (await ada.post("/tenant", {"tenant": "acme-eu"})).status_code == 303
    page = await ada.get("/cost")
    assert page.status_code == 200
    assert "No tasks in the last 8 weeks yet" in page.text
    assert "<svg" not in page.text and "<table" not in page.text


async def test_page_is_refused_without_cost_read(browser_for) -> None:  # type: ignore[no-untyped-def]
    riley = await browser_for("riley")
    page = await riley.get("/cost")
    assert page.status_code == 403
    assert "This page needs a role you do not hold" in page.text
    assert "0.035325" not in page.text
    assert 'href="/cost"' not in (await riley.get("/account")).text
