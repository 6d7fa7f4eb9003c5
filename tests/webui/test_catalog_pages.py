"""The developer's pages: catalog lists and details against the sample catalog, and the preview."""

from __future__ import annotations

import dataclasses
import html
import re
import secrets

import httpx

from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_user
from webui.conftest import sign_in


def text_of(page: httpx.Response) -> str:
    """The page's visible words, tags dropped and entities decoded (to assert on what people read)."""
    words = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    return re.sub(r" ([.,;:%])", r"\1", words)


def section(page: httpx.Response, heading_id: str) -> str:
    """The HTML of the <section> labelled by `heading_id` (up to the next section)."""
    found = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', page.text, re.S)
    assert found, f"no section {heading_id}"
    return found.group(1)


async def test_catalog_lists_the_sample_workflows_agents_and_tools(browser_for) -> None:  # type: ignore[no-untyped-def]
    for who in ("dana", "riley"):
        b = await browser_for(who)
        page = await b.get("/catalog")
        assert page.status_code == 200, page.text[:500]
        workflows = section(page, "wf-h")
        for ref in ("refund_request@2", "ticket_triage@1", "contract_review@1", "research_brief@1"):
            assert f'href="https://frontdesk/catalog/workflows/{ref}"' in workflows, ref
        # refund_request has two versions: one row, both linked, the newest marked.
        assert workflows.count("<code>refund_request@") == 1
        assert re.search(r'href="https://frontdesk/catalog/workflows/refund_request@1" [^>]*>1</a>', workflows)
        assert 'aria-label="refund_request@2 (newest)" aria-current="true">2</a>' in workflows
        assert "customer-service" in workflows and "high" in workflows
        agents = section(page, "ag-h")
        assert "tier-slm → tier-frontier" in agents  # support_triage's ladder
        assert 'href="https://frontdesk/catalog/agents/refund_agent@1"' in agents
        tools = section(page, "tl-h")
        assert 'badge effect-irreversible">irreversible' in tools
        assert "<code>refund-needs-approval</code>" in tools
        assert '<a href="/catalog" aria-current="page">Catalog</a>' in page.text  # in the navigation


async def test_search_filters_by_name(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    page = await b.get("/catalog", params={"q": "Refund"})
    assert page.status_code == 200
    assert "refund_request@2" in section(page, "wf-h") and "ticket_triage" not in page.text
    assert "refund_agent@1" in section(page, "ag-h") and "support_triage" not in page.text
    assert "issue_refund@1" in section(page, "tl-h") and "lookup_ticket" not in page.text
    assert 'value="Refund"' in page.text  # the box keeps what was typed
    page = await b.get("/catalog", params={"q": "zzz-nothing"})
    assert page.status_code == 200
    assert "No workflow has a name containing “zzz-nothing”" in text_of(page)


async def test_workflow_page_shows_steps_pins_examples_and_budget(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    page = await b.get("/catalog/workflows/ticket_triage")
    assert page.status_code == 200
    words = text_of(page)
    steps = section(page, "steps-h")
    order = [
        steps.index(f"<code>{name}</code>") for name in ("triage", "draft", "regulated_review", "update")
    ]
    assert order == sorted(order)
    assert "only if steps.triage.regulated is true" in text_of(httpx.Response(200, text=steps))
    assert 'href="https://frontdesk/catalog/tools/update_ticket@1"' in steps
    assert "lookup_ticket@1" in page.text  # pinned through the triage agent
    assert "Ticket TCK-2001: the customer cannot log in since the last update." in words  # an intake example
    assert "Default budget $0.50 per task" in words
    older = await b.get("/catalog/workflows/refund_request@1")
    assert older.status_code == 200
    assert '<strong aria-current="page">refund_request@1</strong>' in older.text
    assert "the tenant's default ($0.50) applies" in text_of(older)  # it sets no budget of its own
    assert 'href="https://frontdesk/catalog/workflows/refund_request@2"' in older.text


async def test_agent_page_shows_instructions_ladder_validator_schema_used_by(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    page = await b.get("/catalog/agents/support_triage@1")
    assert page.status_code == 200
    words = text_of(page)
    assert "You triage customer support tickets of a software company." in words
    assert re.search(r"<li><code>tier-slm</code></li>\s*<li><code>tier-frontier</code></li>", page.text)
    assert "the answer's confidence must be at least 0.7" in words
    assert '"title": "TriageResult"' in html.unescape(section(page, "schema-h"))  # the output schema
    assert 'href="https://frontdesk/catalog/workflows/ticket_triage@1"' in page.text  # used by
    refund = await b.get("/catalog/agents/refund_agent")
    assert 'href="https://frontdesk/catalog/workflows/refund_request@1"' in refund.text
    assert 'href="https://frontdesk/catalog/workflows/refund_request@2"' in refund.text


async def test_tool_page_matches_the_api(browser_for, sqlite_db, web_app) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    page = await b.get("/catalog/tools/issue_refund")
    assert page.status_code == 200
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web_app), base_url="https://frontdesk"
    ) as api:
        r = await api.get(
            "/api/tools/issue_refund", headers={"Authorization": f"Bearer {sqlite_db.tokens['dana']}"}
        )
    assert r.status_code == 200
    info = r.json()
    rules = section(page, "rules-h")
    shown = re.findall(r"<td><code>([a-z0-9-]+)</code></td>\s*<td>all-tenants</td>", rules)
    assert shown == info["policies"] and "refund-needs-approval" in shown
    assert "money(r.args.amount) &gt;= 100" in rules and 'badge approve">approve' in rules
    assert 'badge deny">deny' in rules and 'badge allow">allow' in rules
    args = section(page, "args-h")
    for field in info["args_schema"]["properties"]:
        assert f"<td><code>{field}</code></td>" in args
    words = text_of(httpx.Response(200, text=args))
    assert "order_id string yes" in words and r"matches ^ORD-\d{4,8}$" in words
    assert "currency string no" in words and "one of EUR, USD, GBP" in words and 'default "EUR"' in words
    assert "amount number or string yes Refund amount number: > 0.0" in words
    assert '"title": "IssueRefundArgs"' in html.unescape(args)  # the raw schema
    assert 'href="https://frontdesk/catalog/agents/refund_agent@1"' in section(page, "used-h")
    assert info["policy_version"][:12] in page.text


async def test_unknown_refs_are_a_404_page(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    for kind in ("workflows", "agents", "tools"):
        page = await b.get(f"/catalog/{kind}/nope@9")
        assert page.status_code == 404
        singular = kind[:-1]
        assert f"<h1>Unknown {singular}</h1>" in page.text
        assert f"There is no {singular} &#39;nope@9&#39; in the catalog" in page.text


async def test_preview_picks_the_refund_workflow_and_shows_the_approval(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")  # a developer: catalog:read, no task:submit
    form = await b.get("/catalog/preview")
    assert form.status_code == 200 and '<label for="input">' in form.text
    page = await b.post("/catalog/preview", {"input": "Order ORD-1002: the customer wants 120 EUR back"})
    assert page.status_code == 200, page.text[:1000]
    words = text_of(page)
    assert re.search(r"Intake picked refund_request@2 with confidence \d+%", words), words[:2000]
    assert "Intake's top 3" in words
    row = re.search(r'<li data-tool="issue_refund">(.*?)</li>\s*<li data-tool', page.text, re.S)
    assert row and 'badge approve">approve' in row.group(1) and "refund-needs-approval" in row.group(1)
    lookup = re.search(r'<li data-tool="lookup_order">(.*?)</li>\s*<li data-tool', page.text, re.S)
    assert (
        lookup
        and 'badge allow">allow' in lookup.group(1)
        and "badge approve" not in lookup.group(1).split("<details>")[0]
    )
    assert "tool approval of issue_refund in step handle_refund" in words
    assert re.search(r"Worst case \$0\.\d{6}", words) and "Task budget $0.50" in words


async def test_preview_with_a_chosen_workflow(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("riley")
    page = await b.post(
        "/catalog/preview",
        {
            "input": "TCK-2230 user asks us to delete their data",
            "workflow": "ticket_triage@1",
            "budget_usd": "0.25",
        },
    )
    assert page.status_code == 200
    words = text_of(page)
    assert "You chose ticket_triage@1." in words and "Intake picked" not in words
    assert (
        "output review in step regulated_review by a person with role approver — only if steps.triage.regulated is true"
        in words
    )
    assert "Task budget $0.25" in words
    assert '<option value="ticket_triage@1" selected>' in page.text


async def test_preview_needs_the_csrf_token(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    r = await b.client.post("/catalog/preview", data={"input": "refund ORD-1002"})
    assert r.status_code == 403 and "CSRF" in r.text


async def test_empty_request_is_refused_and_keeps_the_choice(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    r = await b.post(
        "/catalog/preview", {"input": "  ", "workflow": "contract_review@1", "budget_usd": "0.3"}
    )
    assert r.status_code == 422
    assert "the request text is empty" in r.text
    assert '<option value="contract_review@1" selected>' in r.text and 'value="0.3"' in r.text
    r = await b.post("/catalog/preview", {"input": "refund ORD-1002", "budget_usd": "lots"})
    assert r.status_code == 422 and "is not a number" in html.unescape(r.text)
    assert "refund ORD-1002</textarea>" in r.text


async def test_preview_and_catalog_need_a_permission(web_app, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    who = f"pat{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    with session_scope(sqlite_db.engine) as s:
        ensure_user(s, "acme", f"{who}@acme.example", "Pat Platform", ["platform_admin"], password=password)
    b = await sign_in(web_app, dataclasses.replace(sqlite_db, passwords={who: password}), who)
    try:
        assert (await b.get("/catalog/preview")).status_code == 403
        r = await b.post("/catalog/preview", {"input": "refund ORD-1002"})
        assert r.status_code == 403 and "submit tasks or to read the catalog" in r.text
        assert (await b.get("/catalog")).status_code == 403
        assert (await b.get("/catalog/tools/issue_refund")).status_code == 403
    finally:
        await b.client.aclose()


async def test_an_unplaceable_request_offers_intakes_guesses(browser_for) -> None:  # type: ignore[no-untyped-def]
    b = await browser_for("dana")
    r = await b.post("/catalog/preview", {"input": "What's the weather in Paris tomorrow?"})
    assert r.status_code == 422
    assert "Intake could not tell which workflow fits" in r.text
    guesses = re.findall(r'<button type="submit" name="choose" value="([^"]+)"', r.text)
    assert len(guesses) == 3 and all("@" in g for g in guesses)
    assert "What&#39;s the weather in Paris tomorrow?</textarea>" in r.text
    picked = await b.post(
        "/catalog/preview", {"input": "What's the weather in Paris tomorrow?", "choose": guesses[0]}
    )
    assert picked.status_code == 200
    assert f"You chose {guesses[0]}." in text_of(picked)
    assert f'<option value="{guesses[0]}" selected>' in picked.text
