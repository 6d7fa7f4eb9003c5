"""Sample catalog: a research brief through the planner.

``research_brief@1`` has one planner step: ``research_planner@1`` (frontier tier) splits the request
into two or three sub-questions, each for one of the specialist researchers (open tier), and ends
the plan with ``brief_writer@1`` (frontier tier), who synthesises the researchers' notes. The engine
validates the plan against the catalog (only the agents below) and the policies before any of it
runs, and gives an invalid plan one repair turn. No agent here has tools.
"""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import Plan, StepSpec
from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.demo.catalog.research_models import ResearchBrief, ResearchNote

RESEARCH_AGENTS = [
    "market_researcher@1",
    "technology_researcher@1",
    "finance_researcher@1",
    "brief_writer@1",
]

PLANNER_INSTRUCTIONS = f"""You plan research briefs for a strategy team.
Split the request into two or three sub-questions, each for the one specialist who can answer it,
then finish with a step for the brief writer, who synthesises the specialists' notes.
You may use only these agents: {", ".join(RESEARCH_AGENTS)}.
- Give each step a short snake_case name, the agent (name@version) and instructions: a line
  `Topic: <the subject of the brief>`, then for a researcher a line `Sub-question: <one question>`.
- The specialists have no tools: leave each step's tools empty.
- Put the brief writer last; never plan more than one step per specialist.
Answer with the plan as JSON: a one-sentence rationale and the steps, in the order they run."""

RESEARCHER_INSTRUCTIONS = """You are the {focus} of a strategy team.
Answer the one sub-question you are given about the topic, within your field: {scope}.
Answer with a research note as JSON: the question, one to five findings (short, concrete
statements, each one sentence) and your confidence between 0 and 1. Say what you are unsure of
instead of guessing figures."""

RESEARCHERS = {
    "market_researcher": ("market researcher", "demand, customers, competitors and market size"),
    "technology_researcher": ("technology researcher", "how the products work, maturity, standards"),
    "finance_researcher": ("finance researcher", "costs, prices, margins, funding and incentives"),
}

WRITER_INSTRUCTIONS = """You write research briefs for busy decision makers.
The researchers' notes are in the results so far, keyed by step name. Synthesise them: a title,
a summary of at most five sentences, one section per note (a heading and a body with its
findings) and the open questions, including every note with a confidence below 0.7.
Use only what the notes say; add nothing of your own."""


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="research_planner",
        version="1",
        instructions=PLANNER_INSTRUCTIONS,
        tier="tier-frontier",
        tools=[],
        max_turns=3,
        max_tokens=1200,
        output_model=Plan,
    )
    for name, (focus, scope) in RESEARCHERS.items():
        catalog.add_agent(
            name=name,
            version="1",
            instructions=RESEARCHER_INSTRUCTIONS.format(focus=focus, scope=scope),
            tier="tier-open",
            tools=[],
            max_turns=2,
            max_tokens=800,
            output_model=ResearchNote,
        )
    catalog.add_agent(
        name="brief_writer",
        version="1",
        instructions=WRITER_INSTRUCTIONS,
        tier="tier-frontier",
        tools=[],
        max_turns=2,
        max_tokens=2000,
        output_model=ResearchBrief,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="research_brief",
            version="1",
            description=(
                "A research brief on a market, technology or investment question: a planner splits it "
                "into sub-questions for specialist researchers, a writer synthesises their notes."
            ),
            category="knowledge-work",
            risk_class="low",
            data_classification="internal",
            steps=[
                StepSpec(
                    name="plan",
                    kind="planner",
                    agent="research_planner@1",
                    planner_agents=list(RESEARCH_AGENTS),
                )
            ],
            examples=list(EXAMPLES["research_brief"]),
        )
    )
