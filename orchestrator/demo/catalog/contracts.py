"""Sample catalog: contract review.

Clauses are extracted on an open-weights tier, the risks are judged on the frontier tier, and
legal signs the assessment off (a rejection ends the task rejected).
"""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog, WorkflowDefinition
from orchestrator.contracts import StepSpec
from orchestrator.demo.catalog.contract_models import ClauseExtraction, RiskAssessment
from orchestrator.demo.catalog.examples import EXAMPLES

EXTRACTOR_INSTRUCTIONS = """You extract the structure of a commercial contract.
List the parties, then every clause with its kind (termination, liability, payment,
confidentiality, ip, governing_law or other), its text as written and its section number or
heading. Do not judge the clauses; quote them."""

RISK_INSTRUCTIONS = """You are a contracts lawyer reviewing clauses extracted from a contract for
the company's side. Flag what deserves legal attention, for example unlimited liability,
automatic renewal, termination notice periods over 90 days, long payment terms, one-sided
intellectual property transfers, and missing confidentiality or governing law clauses. Give each
flag a severity (low, medium, high), an overall risk level and a short recommendation."""


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="contract_extractor",
        version="1",
        instructions=EXTRACTOR_INSTRUCTIONS,
        tier="tier-open",
        tools=[],
        max_turns=2,
        max_tokens=2000,
        output_model=ClauseExtraction,
    )
    catalog.add_agent(
        name="contract_risk",
        version="1",
        instructions=RISK_INSTRUCTIONS,
        tier="tier-frontier",
        tools=[],
        max_turns=2,
        max_tokens=1200,
        output_model=RiskAssessment,
    )
    catalog.add_workflow(
        WorkflowDefinition(
            name="contract_review",
            version="1",
            description=(
                "Review a contract before signing: extract its clauses, flag the risks, "
                "and have legal sign the assessment off."
            ),
            category="legal",
            risk_class="high",
            data_classification="confidential",
            steps=[
                StepSpec(name="extract", agent="contract_extractor@1"),
                StepSpec(name="risks", agent="contract_risk@1"),
                StepSpec(
                    name="legal_signoff",
                    kind="checkpoint",
                    review="output_review",
                    assignee_role="approver",
                ),
            ],
            examples=EXAMPLES["contract_review"],
            max_task_turns=8,
            default_budget_usd="1.00",
        )
    )
