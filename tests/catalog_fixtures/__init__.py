"""Catalog packages and YAML definitions for the catalog tests (importable as `catalog_fixtures.*`:
pytest puts tests/ on the path)."""
