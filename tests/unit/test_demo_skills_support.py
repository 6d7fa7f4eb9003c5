"""The demo model's support skills: deterministic triage and replies that fit the output models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator.catalog.loader import load_catalog
from orchestrator.demo.behaviour import default_reply
from orchestrator.demo.catalog.support_models import DraftReply, LookupTicketArgs, TriageResult
from orchestrator.demo.chat import Reply
from orchestrator.demo.seed import DEMO_TICKETS
from orchestrator.demo.skills import registry
from orchestrator.demo.skills.support import (
    LOW_CONFIDENCE,
    draft,
    find_result,
    results_so_far,
    triage,
    triage_skill,
)

THRESHOLD = load_catalog(["orchestrator.demo.catalog"]).agent("support_triage@1").spec.validator.threshold  # type: ignore[union-attr]
TICKETS = {
    t[0]: dict(zip(("ticket_id", "customer", "email", "subject", "body"), t, strict=True))
    for t in DEMO_TICKETS
}
EXPECTED = {  # ticket: (intent, regulated, the small model is sure enough)
    "TCK-2001": ("login", False, True),
    "TCK-2002": ("billing", False, True),
    "TCK-2003": ("privacy", True, True),
    "TCK-2004": ("bug", False, True),
    "TCK-2005": ("account", False, True),
    "TCK-2006": ("other", False, False),  # vague
    "TCK-2007": ("login", False, False),  # login and billing mixed
}
LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_ticket",
        "description": "",
        "parameters": LookupTicketArgs.model_json_schema(),
    },
}


def request(model: str, user: str, output: type[BaseModel], *, tools: bool = True) -> dict[str, Any]:
    schema = output.model_json_schema()
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": f"Instructions.\n{json.dumps(schema)}"},
            {"role": "user", "content": user},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}},
    }
    if tools:
        body["tools"] = [LOOKUP_TOOL]
    return body


def answer_lookup(body: dict[str, Any], reply: Reply, result: dict[str, Any]) -> dict[str, Any]:
    """The request after the tool call `reply` was answered with `result`."""
    call = reply.tool_calls[0]
    asked = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ],
    }
    told = {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)}
    return {**body, "messages": [*body["messages"], asked, told]}


def run_triage(model: str, ticket_id: str) -> TriageResult:
    body = request(model, f"Please triage ticket {ticket_id}.", TriageResult)
    first = default_reply(body)
    assert first.content is None and len(first.tool_calls) == 1
    assert first.tool_calls[0]["name"] == "lookup_ticket"
    assert json.loads(first.tool_calls[0]["arguments"]) == {"ticket_id": ticket_id}
    final = default_reply(answer_lookup(body, first, {**TICKETS[ticket_id], "status": "open"}))
    assert not final.tool_calls and final.content
    return TriageResult.model_validate_json(final.content)


def test_the_skills_are_registered_by_output_model_name() -> None:
    skills = registry()
    assert skills["TriageResult"] is triage_skill
    assert {"TriageResult", "DraftReply"} <= set(skills)


@pytest.mark.parametrize("ticket_id", sorted(EXPECTED))
def test_triage_of_every_demo_ticket_on_the_small_and_the_frontier_model(ticket_id: str) -> None:
    intent, regulated, small_is_sure = EXPECTED[ticket_id]
    small = run_triage("demo-slm", ticket_id)
    frontier = run_triage("demo-frontier", ticket_id)
    for result in (small, frontier):
        assert result.ticket_id == ticket_id
        assert result.regulated is regulated
        assert result.customer == TICKETS[ticket_id]["customer"]
    assert frontier.intent == intent and frontier.confidence >= THRESHOLD  # the frontier is sure
    assert (small.confidence >= THRESHOLD) is small_is_sure  # unsure: the ladder moves up
    if small_is_sure:
        assert small.intent == intent
    else:
        assert small.confidence == LOW_CONFIDENCE


def test_triage_is_deterministic() -> None:
    assert run_triage("demo-slm", "TCK-2007") == run_triage("demo-slm", "TCK-2007")
    body = request("demo-slm", "Ticket TCK-2001: cannot sign in.", TriageResult)
    assert default_reply(body) == default_reply(body)


def test_mixed_topics_are_named_by_the_frontier() -> None:
    result = run_triage("demo-frontier", "TCK-2007")
    assert "billing" in result.summary and result.confidence < 0.95


@pytest.mark.parametrize(
    "text, intent, regulated",
    [
        ("You charged me twice. My lawyer will take legal action if this is not refunded.", "billing", True),
        ("Please delete all my personal data, I withdraw my consent.", "privacy", True),
        ("I want to complain to the ombudsman about your service.", "other", True),
        ("The dashboard crashes with an error when I open it.", "bug", False),
    ],
)
def test_regulated_topics(text: str, intent: str, regulated: bool) -> None:
    result = TriageResult.model_validate(triage(text, small=False))
    assert (result.intent, result.regulated) == (intent, regulated)


def test_without_a_ticket_number_it_answers_from_the_text() -> None:
    reply = default_reply(request("demo-slm", "I forgot my password and cannot log in.", TriageResult))
    assert reply.content is not None
    result = TriageResult.model_validate_json(reply.content)
    assert (result.ticket_id, result.intent) == ("", "login") and result.confidence >= THRESHOLD


def test_a_failed_lookup_still_gets_an_answer() -> None:
    body = request("demo-slm", "Ticket TCK-9999: the invoice is wrong.", TriageResult)
    first = default_reply(body)
    final = default_reply(answer_lookup(body, first, {"error": "ticket TCK-9999 not found"}))
    assert final.content is not None
    result = TriageResult.model_validate_json(final.content)
    assert (result.ticket_id, result.intent, result.customer) == ("TCK-9999", "billing", "")


def test_without_the_tool_offered_it_answers_directly() -> None:
    reply = default_reply(request("demo-slm", "Ticket TCK-2001: cannot log in.", TriageResult, tools=False))
    assert reply.content is not None and TriageResult.model_validate_json(reply.content).intent == "login"


def test_results_so_far_are_read_defensively() -> None:
    triaged = {"ticket_id": "TCK-2003", "intent": "privacy", "regulated": True}
    text = f"Ticket TCK-2003\n\nResults so far:\n{json.dumps({'triage': triaged})}\nThank you."
    assert results_so_far(text) == {"triage": triaged}
    assert find_result(results_so_far(text), {"intent"}, prefer="triage") == triaged
    old_style = f"Ticket\n\nResult of the previous step:\n{json.dumps(triaged)}"
    assert find_result(results_so_far(old_style), {"intent"}) == triaged
    nested = {"steps": {"triage": {"output": triaged}}}
    assert find_result(nested, {"intent"}) == triaged
    assert results_so_far("Results so far: {not json") == {}
    assert results_so_far("no results here") == {}


@pytest.mark.parametrize("ticket_id", sorted(EXPECTED))
def test_draft_reply_from_the_triage_result(ticket_id: str) -> None:
    triaged = run_triage("demo-frontier", ticket_id)
    user = f"Please triage ticket {ticket_id}.\n\nResults so far:\n" + json.dumps(
        {"triage": triaged.model_dump()}, sort_keys=True
    )
    reply = default_reply(request("demo-open", user, DraftReply, tools=False))
    assert reply.content is not None and reply == default_reply(
        request("demo-open", user, DraftReply, tools=False)
    )
    drafted = DraftReply.model_validate_json(reply.content)
    assert ticket_id in drafted.subject
    assert drafted.body.startswith(f"Hello {TICKETS[ticket_id]['customer'].split()[0]},")
    assert drafted.confidence == (0.6 if triaged.intent == "other" else 0.85)
    if triaged.intent == "privacy":
        assert "GDPR" in drafted.body and "one month" in drafted.body


def test_a_legal_threat_is_passed_to_legal_in_the_reply() -> None:
    result = triage("Refund the double charge or I will sue you.", small=False, ticket_id="TCK-3000")
    assert result["regulated"] and result["intent"] == "billing"
    assert "legal team" in DraftReply.model_validate(draft(result)).body


def test_draft_without_a_triage_result_triages_the_request_itself() -> None:
    reply = default_reply(
        request("demo-open", "Ticket TCK-2004: the export crashes.", DraftReply, tools=False)
    )
    assert reply.content is not None
    drafted = DraftReply.model_validate_json(reply.content)
    assert drafted.subject == "[TCK-2004] Thank you for the bug report" and drafted.body.startswith("Hello,")


def test_the_engines_retry_note_does_not_change_the_triage() -> None:
    note = "\n\nAn earlier attempt was not accepted (confidence 0.4 is below 0.7). Answer again, carefully."
    plain = request("demo-frontier", "Ticket TCK-2006: it is not working again.", TriageResult, tools=False)
    noted = request(
        "demo-frontier", "Ticket TCK-2006: it is not working again." + note, TriageResult, tools=False
    )
    assert default_reply(plain) == default_reply(noted)
