"""A catalog package whose agent's output model has no JSON schema: it does not even load."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.catalog.registry import Catalog


class Opaque:
    """Not a pydantic type: no JSON schema."""


class OpaqueAnswer(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    value: Opaque


def register(catalog: Catalog) -> None:
    catalog.add_agent(
        name="opaque_agent",
        version="1",
        instructions="x",
        tier="tier-slm",
        output_model=OpaqueAnswer,
    )
