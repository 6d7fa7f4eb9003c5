"""Paths the tests use: the checkout (for the Makefile's venvs and files that are not product) and
the policies shipped in the package (read where the installed package has them)."""

from pathlib import Path

from orchestrator.resources import DEFAULT_POLICIES_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_POLICIES = DEFAULT_POLICIES_DIR
