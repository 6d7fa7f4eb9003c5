"""Loading a catalog: the packages and YAML files that `FRONTDESK_CATALOG_PACKAGES` names.

The top of the catalog package: it composes the registry (`orchestrator.catalog.registry`) with
the YAML definitions (`orchestrator.catalog.yaml_defs`, which check each definition with
`orchestrator.catalog.validate`). Nothing below imports this module; the API, the workers and
the CLI call :func:`load_catalog`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.catalog.yaml_defs import load_yaml_workflows

__all__ = ["is_yaml_entry", "load_catalog"]


def is_yaml_entry(entry: str) -> bool:
    """A `catalog_packages` entry that names YAML definitions: a .yaml/.yml file or a folder that
    is not a Python package (relative paths are read from the working directory)."""
    path = Path(entry)
    if entry.lower().endswith((".yaml", ".yml")):
        return True
    return path.is_dir() and not (path / "__init__.py").exists()


def load_catalog(packages: list[str]) -> Catalog:
    """Import each catalog package and let it register into one catalog, then read the YAML
    workflow definitions the list names (they may refer to anything the packages registered)."""
    catalog = Catalog()
    yaml_entries = [entry for entry in packages if is_yaml_entry(entry)]
    for name in packages:
        if name in yaml_entries:
            continue
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is None:
            raise CatalogError(f"catalog package {name!r} has no register(catalog) function")
        catalog.origin = name
        register(catalog)
    catalog.origin = ""
    for entry in yaml_entries:
        load_yaml_workflows(catalog, entry)
    return catalog
