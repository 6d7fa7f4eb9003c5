"""What a tool implementation gets besides its arguments: a :class:`ToolContext`.

A tool sees the facts of the task it runs for, its own catalog package's settings, a database
session for its own tables and a heartbeat: not the engine, and not the process's ``Settings``
(which hold every secret of the worker).

A catalog package declares its settings as a pydantic model named by a module attribute
``settings_model``, beside its ``register`` function::

    class RefundSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        tool_delay_seconds: float = Field(0.0, ge=0)

    settings_model = RefundSettings

    async def issue_refund(args: IssueRefundArgs, ctx: ToolContext[RefundSettings]) -> dict: ...

The values come from one setting, ``FRONTDESK_CATALOG_SETTINGS``: a JSON object keyed by package,
e.g. ``{"orchestrator.demo.catalog": {"tool_delay_seconds": 2}}``. The worker validates them once,
when it loads the catalog (:func:`package_settings`), so a bad value stops it at start with a
message naming the package and the field. A package that declares no model gets
:class:`NoSettings`, which accepts no values.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.db import session_scope

SETTINGS_ATTR = "settings_model"  # the module attribute a catalog package declares its settings with

SettingsT = TypeVar("SettingsT", bound=BaseModel)
SessionFactory = Callable[[], AbstractContextManager[Session]]


class NoSettings(BaseModel):
    """The settings of a catalog package that declares none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogSettingsError(ValueError):
    """``FRONTDESK_CATALOG_SETTINGS`` names a package that is not loaded, or gives a value that
    the package's settings model refuses."""


@dataclass(frozen=True)
class TaskFacts:
    """Where a tool call comes from."""

    workflow: str  # name@version of the task's workflow
    step: str
    agent: str  # the agent that asked for the call (`workflow:<name>` for a tool step)
    data_classification: str  # public | internal | confidential


@dataclass(frozen=True)
class ToolContext(Generic[SettingsT]):
    """What a tool implementation may use; the worker builds one for every run.

    ``idempotency_key`` is stable across retries of the same call: a tool with a side effect
    records it with the effect, in the same transaction, and reports the recorded effect when it
    sees the key again."""

    tenant_id: str
    task_id: str
    idempotency_key: str
    facts: TaskFacts
    settings: SettingsT  # the tool's catalog package's own settings (see the module docstring)
    heartbeat: Callable[..., None]
    sessions: SessionFactory = field(repr=False)

    def session(self) -> AbstractContextManager[Session]:
        """A session for the tool's own tables: commits when the block ends, rolls back on an error."""
        return self.sessions()


def sessions_of(engine: Engine) -> SessionFactory:
    """The `sessions` of a ToolContext: each call opens a session on `engine`, which stays hidden."""
    return lambda: session_scope(engine)


def package_settings(
    packages: Iterable[str], values: Mapping[str, Mapping[str, Any]]
) -> dict[str, BaseModel]:
    """Each catalog package's settings, validated from `values` (``FRONTDESK_CATALOG_SETTINGS``).

    `packages` are the imported catalog packages that registered tools. Raises
    :class:`CatalogSettingsError` naming the package and every field it refuses."""
    loaded = list(dict.fromkeys(packages))
    unknown = sorted(set(values) - set(loaded))
    if unknown:
        raise CatalogSettingsError(
            f"FRONTDESK_CATALOG_SETTINGS has settings for {', '.join(map(repr, unknown))}, which is not "
            f"a loaded catalog package with tools (those are: {', '.join(loaded) or 'none'})"
        )
    out: dict[str, BaseModel] = {}
    for package in loaded:
        model = getattr(importlib.import_module(package), SETTINGS_ATTR, NoSettings)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise CatalogSettingsError(
                f"catalog package {package!r}: `{SETTINGS_ATTR}` must be a pydantic model class, not {model!r}"
            )
        try:
            out[package] = model.model_validate(dict(values.get(package, {})))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(the value)'}: {e['msg']}" for e in exc.errors()
            )
            raise CatalogSettingsError(
                f"FRONTDESK_CATALOG_SETTINGS[{package!r}] is invalid: {problems}"
            ) from None
    return out
