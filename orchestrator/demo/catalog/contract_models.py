"""Output models of the contract review sample (pure: no I/O)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ClauseKind = Literal["termination", "liability", "payment", "confidentiality", "ip", "governing_law", "other"]
Severity = Literal["low", "medium", "high"]


class Clause(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ClauseKind
    text: str = Field(min_length=1, max_length=2000)
    section: str = Field(default="", max_length=200, description="The section number or heading")


class ClauseExtraction(BaseModel):
    """The parties and the clauses found in a contract."""

    model_config = ConfigDict(extra="forbid")
    parties: list[str] = Field(default_factory=list, max_length=10)
    clauses: list[Clause] = Field(default_factory=list, max_length=60)


class RiskFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clause_kind: ClauseKind
    severity: Severity
    reason: str = Field(min_length=1, max_length=500)


class RiskAssessment(BaseModel):
    """The risks of a contract, for legal to sign off."""

    model_config = ConfigDict(extra="forbid")
    risk_level: Severity
    flags: list[RiskFlag] = Field(default_factory=list, max_length=30)
    recommendation: str = Field(min_length=1, max_length=2000)
