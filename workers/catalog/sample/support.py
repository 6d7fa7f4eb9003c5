"""Sample catalog: support (registered by the sample catalog work)."""

from __future__ import annotations

from workers.catalog.registry import Catalog


def register(catalog: Catalog) -> None:
    """Registers nothing yet."""
