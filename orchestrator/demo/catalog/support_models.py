"""Argument and output models of the support ticket triage sample (pure: no I/O)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TicketIntent = Literal["login", "billing", "bug", "account", "privacy", "other"]
TicketStatus = Literal["open", "pending", "answered", "closed"]
TICKET_ID_PATTERN = r"^TCK-\d{3,8}$"


class LookupTicketArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: str = Field(pattern=TICKET_ID_PATTERN, description="Ticket number, e.g. TCK-2001")


class UpdateTicketArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: str = Field(pattern=TICKET_ID_PATTERN)
    status: TicketStatus = Field(description="The ticket's new status")
    intent: TicketIntent = Field(description="What the ticket is about")
    reply: str = Field(min_length=1, max_length=10000, description="The answer sent to the customer")


class TriageResult(BaseModel):
    """What the triage agent decides about one ticket."""

    model_config = ConfigDict(extra="forbid")
    ticket_id: str = Field(max_length=20, description="The ticket number, e.g. TCK-2001")
    intent: TicketIntent
    confidence: float = Field(ge=0, le=1, description="How sure the agent is of the intent, 0 to 1")
    regulated: bool = Field(description="Privacy, data protection or legal topics: a person must review")
    summary: str = Field(min_length=1, max_length=500)
    customer: str = Field(default="", max_length=200)


class DraftReply(BaseModel):
    """The answer drafted for the customer."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10000)
    confidence: float = Field(ge=0, le=1)
