"""What a tool gets: the task's facts, its own package's settings (validated once, with a clear
error), a session for its own tables and a heartbeat; never the engine or the process's settings."""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlmodel import select

from orchestrator.budgets.service import load_service
from orchestrator.catalog.context import (
    CatalogSettingsError,
    NoSettings,
    TaskFacts,
    ToolContext,
    package_settings,
    sessions_of,
)
from orchestrator.catalog.registry import Catalog
from orchestrator.db import make_engine, migrate
from orchestrator.demo import catalog as demo_catalog
from orchestrator.demo.catalog.settings import DemoCatalogSettings
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.models import Tenant
from orchestrator.settings import Settings
from workers.activities.tools import ToolActivities

DEMO = "orchestrator.demo.catalog"


class LimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(3, ge=1)


@pytest.fixture
def limit_pkg() -> Iterator[str]:
    """A catalog package that declares settings (and one that declares a non-model)."""
    good = types.ModuleType("ctx_limit_pkg")
    good.settings_model = LimitSettings  # type: ignore[attr-defined]
    bad = types.ModuleType("ctx_bad_pkg")
    bad.settings_model = {"limit": 3}  # type: ignore[attr-defined]
    sys.modules.update({"ctx_limit_pkg": good, "ctx_bad_pkg": bad})
    yield "ctx_limit_pkg"
    for name in ("ctx_limit_pkg", "ctx_bad_pkg"):
        sys.modules.pop(name, None)


def test_each_package_gets_its_own_validated_settings(limit_pkg: str) -> None:
    got = package_settings([DEMO, limit_pkg], {DEMO: {"tool_delay_seconds": 2}})
    assert got[DEMO] == DemoCatalogSettings(tool_delay_seconds=2.0)
    assert got[limit_pkg] == LimitSettings(limit=3)  # nothing given: the model's defaults


def test_bad_values_name_the_package_and_the_field(limit_pkg: str) -> None:
    with pytest.raises(CatalogSettingsError) as caught:
        package_settings([DEMO, limit_pkg], {DEMO: {"tool_delay_seconds": -1}, limit_pkg: {"limt": 2}})
    message = str(caught.value)
    assert message.startswith(f"FRONTDESK_CATALOG_SETTINGS['{DEMO}'] is invalid: tool_delay_seconds:")
    with pytest.raises(CatalogSettingsError, match=r"\['ctx_limit_pkg'\] is invalid: limt: Extra inputs"):
        package_settings([limit_pkg], {limit_pkg: {"limt": 2}})


def test_settings_for_a_package_not_loaded_or_without_a_model_are_refused(limit_pkg: str) -> None:
    with pytest.raises(CatalogSettingsError, match=r"'orchestrator\.demo\.catlog', which is not a loaded"):
        package_settings([DEMO], {"orchestrator.demo.catlog": {"tool_delay_seconds": 1}})
    assert package_settings(["catalog_fixtures.typed_pkg"], {}) == {
        "catalog_fixtures.typed_pkg": NoSettings()
    }
    with pytest.raises(CatalogSettingsError, match="typed_pkg'] is invalid: anything: Extra inputs"):
        package_settings(["catalog_fixtures.typed_pkg"], {"catalog_fixtures.typed_pkg": {"anything": 1}})
    with pytest.raises(CatalogSettingsError, match="`settings_model` must be a pydantic model class"):
        package_settings(["ctx_bad_pkg"], {})


def test_the_setting_is_a_json_object_keyed_by_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FRONTDESK_CATALOG_SETTINGS", '{"orchestrator.demo.catalog": {"tool_delay_seconds": 30}}'
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.catalog_settings == {DEMO: {"tool_delay_seconds": 30}}
    assert settings.catalog_packages == []  # the sample catalog loads only when named
    assert not any(name.startswith("sample") for name in Settings.model_fields)


def test_a_tool_sees_no_engine_and_no_process_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ctx.db'}"
    migrate(url)
    engine = make_engine(url)
    facts = TaskFacts(
        workflow="refund_request@1", step="handle", agent="refund_agent@1", data_classification="internal"
    )
    ctx: ToolContext[DemoCatalogSettings] = ToolContext(
        tenant_id="acme",
        task_id="tsk_1",
        idempotency_key="k",
        facts=facts,
        settings=DemoCatalogSettings(),
        heartbeat=lambda *a: None,
        sessions=sessions_of(engine),
    )
    fields = {f.name for f in dataclasses.fields(ctx)}
    assert fields == {"tenant_id", "task_id", "idempotency_key", "facts", "settings", "heartbeat", "sessions"}
    assert not any(isinstance(getattr(ctx, f), Settings) for f in fields)
    assert "sessions=" not in repr(ctx)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.facts.step = "other"  # type: ignore[misc]
    # session(): commits when the block ends, rolls back on an error.
    order = {"customer": "C", "email": "c@example.com", "amount": Decimal("10.00"), "currency": "EUR"}
    with ctx.session() as session:
        session.add(Tenant(id="acme", name="Acme"))
        session.flush()
        session.add(DemoOrder(id="ORD-9001", tenant_id="acme", status="delivered", **order))
    with pytest.raises(RuntimeError), ctx.session() as session:
        session.exec(text("UPDATE demo_order SET status = 'refunded' WHERE id = 'ORD-9001'"))
        raise RuntimeError("the tool failed half way")
    with ctx.session() as session:
        assert session.exec(select(DemoOrder.status).where(DemoOrder.id == "ORD-9001")).one() == "delivered"
    engine.dispose()


def test_the_worker_refuses_bad_catalog_settings_when_it_loads_the_catalog(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    budgets = load_service(engine, settings.policies_dir)
    catalog = Catalog(origin=DEMO)  # as loading the package does: its tools' source is the package
    demo_catalog.register(catalog)
    bad = settings.model_copy(update={"catalog_settings": {DEMO: {"tool_delay_seconds": "soon"}}})
    with pytest.raises(CatalogSettingsError, match=r"tool_delay_seconds: Input should be a valid number"):
        ToolActivities(engine, catalog, bad, budgets)
    empty = ToolActivities(engine, Catalog(), settings, budgets)  # an empty catalog: nothing to run
    assert len(empty.activities()) == 1  # output validation only
    engine.dispose()
