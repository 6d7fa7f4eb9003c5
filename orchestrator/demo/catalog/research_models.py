"""Output models of the research-brief sample (pure: no I/O).

The planner itself answers with :class:`orchestrator.contracts.Plan`; these are what the specialists it
plans for answer with.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ResearchNote(BaseModel):
    """One researcher's answer to one sub-question."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=500)
    findings: list[str] = Field(min_length=1, max_length=5)
    confidence: float = Field(ge=0, le=1)


class BriefSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heading: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)


class ResearchBrief(BaseModel):
    """The brief writer's synthesis of the research notes."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=2000)
    sections: list[BriefSection] = Field(min_length=1, max_length=8)
    open_questions: list[str] = Field(default_factory=list, max_length=10)
