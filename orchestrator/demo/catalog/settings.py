"""The sample catalog's own settings: `FRONTDESK_CATALOG_SETTINGS["orchestrator.demo.catalog"]`,
validated by the worker when it loads the catalog (see :mod:`orchestrator.catalog.context`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DemoCatalogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool_delay_seconds: float = Field(
        0.0,
        ge=0,
        description="Demo/test only: `issue_refund` waits this long (heartbeating) after its ledger "
        "row is committed, so a test can kill the worker between the side effect and the end of the "
        "activity.",
    )
