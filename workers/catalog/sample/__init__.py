"""The sample catalog: a refund request (with an approval above a threshold) and a summary."""

from __future__ import annotations

from workers.catalog.registry import Catalog
from workers.catalog.sample import definitions


def register(catalog: Catalog) -> None:
    definitions.register(catalog)
