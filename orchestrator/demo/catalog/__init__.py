"""The sample catalog: refunds, a summary, support ticket triage, contract review, a research brief."""

from __future__ import annotations

from orchestrator.catalog.registry import Catalog
from orchestrator.demo.catalog import contracts, definitions, refund_email, research, support
from orchestrator.demo.catalog.settings import DemoCatalogSettings

settings_model = DemoCatalogSettings  # FRONTDESK_CATALOG_SETTINGS["orchestrator.demo.catalog"]


def register(catalog: Catalog) -> None:
    definitions.register(catalog)
    support.register(catalog)
    contracts.register(catalog)
    research.register(catalog)
    refund_email.register(catalog)
