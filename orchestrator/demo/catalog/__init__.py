"""The sample catalog: refunds, a summary, support ticket triage, contract review, a research brief."""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog
from orchestrator.demo.catalog import contracts, definitions, refund_email, research, support


def register(catalog: Catalog) -> None:
    definitions.register(catalog)
    support.register(catalog)
    contracts.register(catalog)
    research.register(catalog)
    refund_email.register(catalog)
