"""Argument and output models of the sample catalog (pure: no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LookupOrderArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(pattern=r"^ORD-\d{4,8}$", description="Order number, e.g. ORD-1001")


class IssueRefundArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(pattern=r"^ORD-\d{4,8}$")
    amount: Decimal = Field(gt=0, le=100000, max_digits=10, decimal_places=2, description="Refund amount")
    currency: Literal["EUR", "USD", "GBP"] = "EUR"
    reason: str = Field(min_length=1, max_length=500)


class SendEmailArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10000)


class RefundDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str
    action: Literal["refunded", "declined", "escalated"]
    amount: Decimal = Field(ge=0)
    currency: str
    customer_message: str = Field(min_length=1, max_length=2000)


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=4000)
    key_points: list[str] = Field(min_length=1, max_length=5)
