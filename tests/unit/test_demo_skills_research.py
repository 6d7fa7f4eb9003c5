"""Demo-model skills of the research brief (planner, researchers, writer) and of the customer
e-mail of refund_request@2, fed the prompts the task engine really builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.catalog.registry import Catalog
from orchestrator.contracts import Plan, TaskWorkflowInput, ValidatePlanInput, WorkflowSpec
from orchestrator.demo.behaviour import default_reply
from orchestrator.demo.catalog import register
from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.demo.catalog.models import SendEmailArgs
from orchestrator.demo.catalog.refund_email import CustomerEmail
from orchestrator.demo.catalog.research_models import ResearchBrief, ResearchNote
from orchestrator.demo.skills import refund_email, registry
from orchestrator.demo.skills.research import choose_kinds, earlier_results, topic_of
from workers.workflows.support import opening_messages

HEAT_PUMPS = EXAMPLES["research_brief"][0]
RESEARCH_AGENTS = {"market_researcher@1", "technology_researcher@1", "finance_researcher@1", "brief_writer@1"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog = Catalog()
    register(catalog)
    return catalog


def pinned(catalog: Catalog, ref: str) -> WorkflowSpec:
    return catalog.pin(ref)


def body(
    spec: WorkflowSpec,
    agent_ref: str,
    text: str,
    outputs: dict[str, Any] | None = None,
    *,
    assignment: str | None = None,
    note: str | None = None,
    model: str = "demo-frontier",
) -> dict[str, Any]:
    """The chat request the engine sends for one agent step (as the router forwards it)."""
    agent = spec.agents[agent_ref]
    inp = TaskWorkflowInput(
        task_id="tsk_1", tenant_id="acme", requester_id="u1", definition=spec, input_text=text
    )
    messages = opening_messages(agent, inp, outputs or {}, assignment=assignment, note=note)
    return {
        "model": model,
        "messages": [m.to_openai() for m in messages],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": agent.output_schema},
        },
        "max_tokens": agent.max_tokens,
    }


def answer(request: dict[str, Any]) -> dict[str, Any]:
    reply = default_reply(request)  # dispatches on the schema's title, like the demo model does
    assert not reply.tool_calls
    assert reply.content is not None
    max_chars = request["max_tokens"] * 4  # the demo model cuts longer answers
    assert len(reply.content) <= max_chars, (len(reply.content), max_chars)
    return json.loads(reply.content)  # type: ignore[no-any-return]


def plan_for(catalog: Catalog, text: str, note: str | None = None) -> Plan:
    spec = pinned(catalog, "research_brief@1")
    return Plan.model_validate(answer(body(spec, "research_planner@1", text, note=note)))


def run_research(catalog: Catalog, text: str) -> tuple[Plan, dict[str, dict[str, Any]], ResearchBrief]:
    """Plan, then each planned step in order, as the engine runs a planner step."""
    spec = pinned(catalog, "research_brief@1")
    plan = plan_for(catalog, text)
    results: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        model = "demo-open" if step.agent.endswith("_researcher@1") else "demo-frontier"
        results[step.name] = answer(
            body(spec, step.agent, text, results, assignment=step.instructions, model=model)
        )
    brief = ResearchBrief.model_validate(results[plan.steps[-1].name])
    return plan, results, brief


# --- wiring -----------------------------------------------------------------------------------------


def test_skills_are_registered_under_the_output_models_names(catalog: Catalog) -> None:
    skills = registry()
    for ref in ("research_planner@1", "market_researcher@1", "brief_writer@1", "customer_emailer@1"):
        title = catalog.agent(ref).spec.output_schema["title"]
        assert title in skills, title


def test_catalog_definitions(catalog: Catalog) -> None:
    research = catalog.workflow("research_brief@1")
    (step,) = research.steps
    assert (step.kind, step.agent) == ("planner", "research_planner@1")
    assert set(step.planner_agents) == RESEARCH_AGENTS
    assert research.examples == EXAMPLES["research_brief"]
    assert catalog.agent("research_planner@1").output_model is Plan
    assert catalog.agent("research_planner@1").spec.tier == "tier-frontier"
    assert catalog.agent("brief_writer@1").spec.tier == "tier-frontier"
    for name in ("market", "technology", "finance"):
        spec = catalog.agent(f"{name}_researcher@1").spec
        assert (spec.tier, spec.tools) == ("tier-open", [])

    assert catalog.workflow("refund_request").version == "2"  # the latest
    assert [s.name for s in catalog.workflow("refund_request@1").steps] == ["handle_refund"]
    v2 = catalog.workflow("refund_request@2")
    assert [(s.name, s.kind) for s in v2.steps] == [
        ("handle_refund", "agent"),
        ("customer_email", "agent"),
        ("send", "tool"),
    ]
    assert v2.steps[2].tool == "send_email@1"
    assert v2.steps[2].args == {
        "to": "{steps.customer_email.to}",
        "subject": "{steps.customer_email.subject}",
        "body": "{steps.customer_email.body}",
    }
    assert catalog.agent("customer_emailer@1").spec.tier == "tier-frontier"
    assert v2.examples == EXAMPLES["refund_request"]


# --- the planner --------------------------------------------------------------------------------------


def test_planner_decomposes_into_researchers_then_the_writer(catalog: Catalog) -> None:
    plan = plan_for(catalog, HEAT_PUMPS)
    agents = [s.agent for s in plan.steps]
    assert agents[-1] == "brief_writer@1"
    researchers = agents[:-1]
    assert 2 <= len(researchers) <= 3
    assert len(set(researchers)) == len(researchers)
    assert set(agents) <= RESEARCH_AGENTS
    assert all(s.tools == [] for s in plan.steps)
    assert len({s.name for s in plan.steps}) == len(plan.steps)
    for step in plan.steps[:-1]:
        assert "Sub-question:" in step.instructions and "heat pumps in Germany" in step.instructions
    assert "market_researcher@1" in researchers  # the request is about a market


def test_planner_picks_the_specialisms_the_request_names(catalog: Catalog) -> None:
    text = "Prepare a brief on solid-state batteries: the technology, production costs and the market."
    agents = [s.agent for s in plan_for(catalog, text).steps]
    assert agents == [
        "market_researcher@1",
        "technology_researcher@1",
        "finance_researcher@1",
        "brief_writer@1",
    ]
    assert choose_kinds("What does it cost to run it?", ["market", "technology", "finance"]) == [
        "market",
        "finance",
    ]
    assert choose_kinds("anything", ["technology"]) == ["technology"]


def test_the_plan_passes_the_engines_plan_validation(catalog: Catalog) -> None:
    from repo_paths import SHIPPED_POLICIES

    from orchestrator.policy.engine import PolicyEngine
    from workers.activities.plans import PlanActivities

    spec = pinned(catalog, "research_brief@1")
    (step,) = spec.steps
    checker = PlanActivities(PolicyEngine(SHIPPED_POLICIES))
    for text in EXAMPLES["research_brief"]:
        checked = checker._validate(
            ValidatePlanInput(
                tenant_id="acme",
                plan=plan_for(catalog, text).model_dump(),
                planner_agents=step.planner_agents,
                agents={ref.split("@", 1)[0]: spec.agents[ref] for ref in step.planner_agents},
            )
        )
        assert checked.ok, (text, checked.problems)


def test_planner_is_deterministic(catalog: Catalog) -> None:
    assert plan_for(catalog, HEAT_PUMPS) == plan_for(catalog, HEAT_PUMPS)


def test_planner_answers_the_repair_turn_with_a_valid_plan(catalog: Catalog) -> None:
    note = (
        "Your previous answer was not valid against the output schema: the plan was refused: step "
        "'probe' names unknown agent 'hacker_agent@1'; the planner may use: market_researcher@1, "
        "technology_researcher@1, finance_researcher@1, brief_writer@1. Propose a valid plan."
    )
    plan = plan_for(catalog, "[script:abc] " + HEAT_PUMPS, note=note)
    assert {s.agent for s in plan.steps} <= RESEARCH_AGENTS
    assert all("hacker" not in s.instructions and "[script" not in s.instructions for s in plan.steps)
    assert plan == plan_for(catalog, HEAT_PUMPS)


def test_a_planner_for_other_agents_is_left_to_the_generic_behaviour() -> None:
    from orchestrator.demo.skills.research import plan_skill

    request = {
        "messages": [
            {"role": "system", "content": "Plan with these agents only: contract_reader@1, lawyer@2."},
            {"role": "user", "content": "Review this contract."},
        ]
    }
    assert plan_skill(request) is None


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        (HEAT_PUMPS, "the market for heat pumps in Germany"),
        ("Research brief about cloud gaming in Japan, please.", "cloud gaming in Japan"),
        ("research brief: vertical farming economics", "vertical farming economics"),
        ("What's the outlook for SMRs? Prepare a brief for the board.", "the outlook for SMRs"),
        ("Analyse the move into Japan: market size, competitors.", "the move into Japan"),
        ("Compare the main CDP vendors and recommend one.", "the main CDP vendors"),
        ("Investigate vertical farming economics!", "vertical farming economics"),
        ("Hydrogen trucks", "Hydrogen trucks"),
        ("", "the requested subject"),
    ],
)
def test_topic_of(text: str, topic: str) -> None:
    assert topic_of(text) == topic


# --- researchers and the writer -------------------------------------------------------------------


def test_researcher_answers_its_own_sub_question(catalog: Catalog) -> None:
    spec = pinned(catalog, "research_brief@1")
    plan = plan_for(catalog, HEAT_PUMPS)
    for step in plan.steps[:-1]:
        note = ResearchNote.model_validate(
            answer(body(spec, step.agent, HEAT_PUMPS, assignment=step.instructions, model="demo-open"))
        )
        assert note.question in step.instructions
        assert 1 <= len(note.findings) <= 5
        assert 0 <= note.confidence <= 1
        assert all("heat pumps in Germany" in f for f in note.findings)


def test_researcher_without_an_assignment_still_answers(catalog: Catalog) -> None:
    spec = pinned(catalog, "research_brief@1")
    note = ResearchNote.model_validate(answer(body(spec, "finance_researcher@1", HEAT_PUMPS)))
    assert "costs" in note.question and "heat pumps in Germany" in note.question


def test_research_end_to_end_synthesises_every_note(catalog: Catalog) -> None:
    plan, results, brief = run_research(catalog, HEAT_PUMPS)
    notes = [ResearchNote.model_validate(results[s.name]) for s in plan.steps[:-1]]
    assert len(brief.sections) == len(notes)
    for note, section in zip(notes, brief.sections, strict=True):
        assert note.question in section.heading
        assert all(f in section.body for f in note.findings)
    assert "heat pumps in Germany" in brief.title
    assert "not research" in brief.summary  # labelled as demo output
    low = [n.question for n in notes if n.confidence < 0.7]
    assert len(brief.open_questions) == len(low)
    assert all(any(q in oq for oq in brief.open_questions) for q in low)


@pytest.mark.parametrize("text", EXAMPLES["research_brief"])
def test_every_example_request_gets_a_valid_brief(catalog: Catalog, text: str) -> None:
    plan, _, brief = run_research(catalog, text)  # every answer validated, none cut short
    assert len(brief.sections) == len(plan.steps) - 1


def test_writer_reads_results_defensively(catalog: Catalog) -> None:
    spec = pinned(catalog, "research_brief@1")
    note = {"question": "Q?", "findings": ["A finding."], "confidence": 0.9}
    # nested, wrapped and with unrelated outputs around it
    outputs = {"plan": {"results": {"market_research": note}}, "other": {"x": 1}}
    brief = ResearchBrief.model_validate(answer(body(spec, "brief_writer@1", HEAT_PUMPS, outputs)))
    assert [s.heading for s in brief.sections] == ["Market: Q?"]
    assert brief.open_questions == []
    # the older framing of a single previous result
    request = body(spec, "brief_writer@1", HEAT_PUMPS)
    request["messages"][1]["content"] += "\n\nResult of the previous step:\n" + json.dumps(note)
    brief = ResearchBrief.model_validate(answer(request))
    assert [s.body for s in brief.sections] == ["- A finding.\nConfidence: 90%."]
    # nothing usable: still a valid brief that says so
    request = body(spec, "brief_writer@1", HEAT_PUMPS)
    request["messages"][1]["content"] += "\n\nResults so far:\n{not json"
    brief = ResearchBrief.model_validate(answer(request))
    assert brief.sections[0].heading == "Scope" and brief.open_questions


def test_earlier_results_ignores_text_without_a_header() -> None:
    request = {"messages": [{"role": "user", "content": 'Look at {"findings": ["x"]} please'}]}
    assert earlier_results(request) == []


# --- the customer e-mail of refund_request@2 -----------------------------------------------------


def decision(action: str, amount: str = "0.00", message: str = "Msg.") -> dict[str, Any]:
    return {
        "order_id": "ORD-1234",
        "action": action,
        "amount": amount,
        "currency": "EUR",
        "customer_message": message,
    }


def email_for(
    catalog: Catalog, outputs: dict[str, Any], text: str = "Refund order ORD-1234."
) -> CustomerEmail:
    spec = pinned(catalog, "refund_request@2")
    email = CustomerEmail.model_validate(answer(body(spec, "customer_emailer@1", text, outputs)))
    SendEmailArgs.model_validate(email.model_dump())  # the tool step takes the fields as they are
    return email


def test_email_tells_the_customer_about_the_refund(catalog: Catalog) -> None:
    done = decision("refunded", "25.00", "We have refunded 25.00 EUR for order ORD-1234.")
    email = email_for(catalog, {"handle_refund": done})
    assert email.to == "orders+ORD-1234@example.com"
    assert "25.00 EUR" in email.subject and "ORD-1234" in email.subject
    assert "refunded 25.00 EUR" in email.body and email.body.startswith("Dear customer")
    assert email.body.count("25.00 EUR") == 1  # the agent's own message would repeat it


def test_email_tells_the_customer_when_it_was_declined(catalog: Catalog) -> None:
    email = email_for(
        catalog, {"handle_refund": decision("declined", message="Order ORD-1234 cannot be refunded.")}
    )
    assert "could not refund order ORD-1234" in email.body
    assert "cannot be refunded" in email.body
    assert "refund request" in email.subject

    email = email_for(catalog, {"handle_refund": decision("escalated")})
    assert "colleague is reviewing" in email.body


def test_email_without_a_decision_falls_back_to_the_request(catalog: Catalog) -> None:
    email = email_for(catalog, {}, text="Refund 20 EUR on order ORD-98765 please.")
    assert email.to == "orders+ORD-98765@example.com"
    email = email_for(catalog, {}, text="Refund my thing.")
    assert email.to == "orders@example.com"
    assert refund_email.customer_address(None) == "orders@example.com"
