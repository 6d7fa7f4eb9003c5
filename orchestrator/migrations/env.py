"""Alembic environment: runs migrations on the URL that `orchestrator.db.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from orchestrator import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from orchestrator.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate compares only Frontdesk's own tables: a table in the database that no model
    here declares (the demo catalog's, or a catalog package's) is never proposed for a drop."""
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
