"""Files that ship inside the package: templates, static files, the default policies and the
migrations.

They are resolved from the installed package (``importlib.resources``), never from a source
checkout, so ``pip install frontdesk-*.whl`` from any folder finds them. setuptools installs
packages as plain folders, so each resource is a real path casbin, alembic and jinja2 can open.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged(package: str, *parts: str) -> Path:
    """The path of a data folder or file inside an installed package."""
    return Path(str(files(package).joinpath(*parts)))


TEMPLATES_DIR = packaged("orchestrator.web", "templates")
STATIC_DIR = packaged("orchestrator.web", "static")
DEFAULT_POLICIES_DIR = packaged("orchestrator.policy", "defaults")  # FRONTDESK_POLICIES_DIR overrides
MIGRATIONS_DIR = packaged("orchestrator", "migrations")
