"""The demo model's contract skills: deterministic clause extraction and risk flags."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator.demo.behaviour import default_reply
from orchestrator.demo.catalog.contract_models import ClauseExtraction, RiskAssessment
from orchestrator.demo.skills import registry
from orchestrator.demo.skills.contracts import assess, extract, kind_of, notice_days

SUPPLIER_AGREEMENT = """Review this supplier agreement before we sign it.

MASTER SERVICES AGREEMENT

This Master Services Agreement is made between Northwind Logistics GmbH (the "Supplier") and
Acme Retail Ltd (the "Customer"), effective 1 March 2027.

1. Services
The Supplier provides warehousing and last-mile delivery services as described in Schedule A.

2. Term and Termination
2.1 The Agreement runs for an initial term of 24 months and renews automatically for successive
12-month periods.
2.2 Either party may terminate the Agreement by giving six (6) months' prior written notice.

3. Fees and Payment
The Customer pays the fees monthly in advance. Invoices are payable net 90. The Supplier may
increase the fees once a year.

4. Liability
The Customer's liability under this Agreement shall be unlimited. The Supplier's liability is
limited to the fees paid in the previous 12 months.

5. Intellectual Property
The Customer assigns to the Supplier all intellectual property rights in any work product
created under this Agreement.

6. Governing Law
This Agreement is governed by the laws of Germany; the courts of Hamburg have exclusive
jurisdiction.
"""

MUTUAL_NDA = """Mutual non-disclosure agreement between Foo Inc. and Bar LLC.

## Confidentiality
Each party keeps the other party's Confidential Information secret for three years after disclosure.

## Liability
Neither party is liable for indirect damages. Total liability shall not exceed 10,000 EUR.

## Governing law
This agreement is governed by English law; the courts of London have jurisdiction.
"""


def request(model: str, user: str, output: type[BaseModel]) -> dict[str, Any]:
    schema = output.model_json_schema()
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": f"Instructions.\n{json.dumps(schema)}"},
            {"role": "user", "content": user},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}},
    }


def extracted(text: str) -> ClauseExtraction:
    reply = default_reply(request("demo-open", text, ClauseExtraction))
    assert reply.content is not None and not reply.tool_calls
    return ClauseExtraction.model_validate_json(reply.content)


def test_the_skills_are_registered_by_output_model_name() -> None:
    assert {"ClauseExtraction", "RiskAssessment"} <= set(registry())


def test_extraction_of_a_numbered_contract() -> None:
    result = extracted(SUPPLIER_AGREEMENT)
    assert result.parties == ["Northwind Logistics GmbH", "Acme Retail Ltd"]
    assert [(c.section, c.kind) for c in result.clauses] == [
        ("1", "other"),
        ("2.1", "termination"),
        ("2.2", "termination"),
        ("3", "payment"),
        ("4", "liability"),
        ("5", "ip"),
        ("6", "governing_law"),
    ]
    liability = result.clauses[4].text
    assert liability.startswith("The Customer's liability") and "unlimited" in liability


def test_extraction_of_markdown_and_capitalised_headings() -> None:
    result = extracted(MUTUAL_NDA)
    assert result.parties == ["Foo Inc.", "Bar LLC"]
    assert [(c.section, c.kind) for c in result.clauses] == [
        ("Confidentiality", "confidentiality"),
        ("Liability", "liability"),
        ("Governing law", "governing_law"),
    ]
    other = extract(
        "Supplier: Contoso Ltd, London\nCustomer: Acme Retail Ltd\nSection 4 - Liability\n"
        "The Supplier indemnifies the Customer.\nPAYMENT TERMS\nInvoices are due within 30 days.\n"
    )
    ClauseExtraction.model_validate(other)
    assert other["parties"] == ["Contoso Ltd", "Acme Retail Ltd"]
    assert [(c["section"], c["kind"]) for c in other["clauses"]] == [
        ("4", "liability"),
        ("Payment Terms", "payment"),
    ]


def test_extraction_without_headings_goes_sentence_by_sentence() -> None:
    result = ClauseExtraction.model_validate(
        extract(
            "The supplier may terminate at any time without cause. Liability is unlimited. Lunch is free."
        )
    )
    assert [c.kind for c in result.clauses] == ["termination", "liability"]


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Limitation of Liability", "liability"),
        ("Fees", "payment"),
        ("Non-Disclosure", "confidentiality"),
        ("Licence and Ownership", "ip"),
        ("Jurisdiction", "governing_law"),
        ("Term and Renewal", "termination"),
        ("Force majeure", "other"),
    ],
)
def test_heading_kinds(text: str, kind: str) -> None:
    assert kind_of(text, heading=True) == kind


def test_notice_periods() -> None:
    assert notice_days("Either party may terminate with six (6) months' written notice.") == 180
    assert notice_days("Termination requires 30 days notice.") == 30
    assert notice_days("Terminate with 2 years' notice, or 10 weeks after a breach.") == 730
    assert notice_days("The term is 24 months.") == 0  # no notice named


def test_risks_of_the_supplier_agreement() -> None:
    extraction = extracted(SUPPLIER_AGREEMENT)
    user = SUPPLIER_AGREEMENT + "\n\nResults so far:\n" + json.dumps({"extract": extraction.model_dump()})
    reply = default_reply(request("demo-frontier", user, RiskAssessment))
    assert reply.content is not None
    result = RiskAssessment.model_validate_json(reply.content)
    assert result.risk_level == "high"
    assert {(f.clause_kind, f.severity, f.reason) for f in result.flags} == {
        ("termination", "medium", "Automatic renewal: the contract renews unless cancelled."),
        ("termination", "medium", "Termination notice of 180 days (over 90 days)."),
        ("payment", "medium", "The other party may change prices unilaterally."),
        ("payment", "low", "Long payment term of 90 days."),
        ("liability", "high", "Unlimited liability: exposure is not capped."),
        ("ip", "medium", "Transfer of all intellectual property rights."),
        ("confidentiality", "medium", "No confidentiality clause."),
    }
    assert result.recommendation.startswith("Do not sign as drafted.")
    assert "Unlimited liability" in result.recommendation


def test_risks_of_a_balanced_nda_are_low() -> None:
    result = RiskAssessment.model_validate(assess(extracted(MUTUAL_NDA).model_dump()))
    assert (result.risk_level, result.flags) == ("low", [])
    assert result.recommendation.startswith("No material risks found")
    forever = MUTUAL_NDA.replace("for three years after disclosure", "in perpetuity")
    result = RiskAssessment.model_validate(assess(extracted(forever).model_dump()))
    assert result.risk_level == "low" and [f.clause_kind for f in result.flags] == ["confidentiality"]
    assert result.recommendation.startswith("Acceptable to sign; note:")


def test_long_notice_is_high_and_a_missing_cap_medium() -> None:
    text = (
        "1. Termination\nThe Customer may terminate with 12 months' written notice.\n"
        "2. Liability\nEach party is liable for damages it causes.\n"
        "3. Confidentiality\nBoth parties keep the terms confidential.\n4. Governing law\nSwiss law applies.\n"
    )
    result = RiskAssessment.model_validate(assess(extract(text)))
    assert result.risk_level == "high"
    assert [(f.clause_kind, f.severity) for f in result.flags] == [
        ("termination", "high"),
        ("liability", "medium"),
    ]


def test_without_an_extraction_the_risk_skill_reads_the_contract_itself() -> None:
    reply = default_reply(request("demo-frontier", SUPPLIER_AGREEMENT, RiskAssessment))
    assert reply.content is not None
    assert json.loads(reply.content) == assess(extract(SUPPLIER_AGREEMENT))


def test_contract_skills_are_deterministic() -> None:
    for output in (ClauseExtraction, RiskAssessment):
        body = request("demo-open", SUPPLIER_AGREEMENT, output)
        assert default_reply(body) == default_reply(json.loads(json.dumps(body)))


def test_a_request_without_contract_text_asks_for_it() -> None:
    reply = default_reply(
        request("demo-frontier", "Review this supplier agreement before we sign it: ...", RiskAssessment)
    )
    assert reply.content is not None
    result = RiskAssessment.model_validate_json(reply.content)
    assert result.risk_level == "medium" and [f.clause_kind for f in result.flags] == ["other"]
    assert result.recommendation.startswith("Attach the full contract text")


def test_a_line_starting_with_a_number_is_not_always_a_heading() -> None:
    text = "1. Termination\nEither party may terminate with\n120 days notice to\n10 Downing Street, London.\n"
    result = ClauseExtraction.model_validate(extract(text))
    assert [(c.section, c.kind) for c in result.clauses] == [("1", "termination")]
    assert result.clauses[0].text.endswith("10 Downing Street, London.")
