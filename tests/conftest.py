"""Shared fixtures: real Temporal dev server, real LiteLLM proxy in front of the demo model,
SQLite and PostgreSQL databases, the API in-process over ASGI and a worker per test.

Nothing here talks to a real model provider: the router's only upstream is the demo model.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from repo_paths import REPO_ROOT
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from orchestrator.app import build_state, create_app
from orchestrator.contracts import TERMINAL_STATUSES
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.demo.devstack.litellm import litellm_command, litellm_env, write_litellm_config
from orchestrator.demo.devstack.processes import ManagedProcess, free_port, temporal_binary
from orchestrator.demo.seed import ensure_tenant, ensure_token, ensure_user, seed_demo
from orchestrator.settings import Settings
from workers.worker import build_router, build_worker

HISTORIES_DIR = REPO_ROOT / "tests" / "replay" / "histories"
# Histories of the workflow's current path go to their own folder; the older folders stay, since
# they prove that tasks started on older code still replay (the root holds those from before the
# combined round trips of TaskWorkflowInput.round_trips).
CURRENT_HISTORIES = HISTORIES_DIR / "round-trips"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
ROUTER_KEY = "test-" + secrets.token_hex(8)
TERMINAL = set(TERMINAL_STATUSES)
DEMO_CATALOG = "orchestrator.demo.catalog"  # the sample catalog: loaded only when named


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-histories",
        action="store_true",
        help="write the histories of the workflows these tests run to tests/replay/histories/round-trips/",
    )


@pytest.fixture
def record_history(request: pytest.FixtureRequest, temporal_env: WorkflowEnvironment) -> Any:
    """`await record_history(task_id, name)`: saves the workflow's history when --record-histories.

    An existing file is kept: histories recorded by older code are what proves that today's code
    still replays tasks started before a change (delete a file to record it again)."""

    async def record(task_id: str, name: str) -> None:
        target = CURRENT_HISTORIES / f"{name}.json"
        if not request.config.getoption("--record-histories") or target.exists():
            return
        history = await temporal_env.client.get_workflow_handle(f"task-{task_id}").fetch_history()
        CURRENT_HISTORIES.mkdir(parents=True, exist_ok=True)
        target.write_text(history.to_json())

    return record


# --- processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def demo_model_url(logs_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = ManagedProcess(
        name="demo-model",
        argv=[sys.executable, "-m", "orchestrator.cli.main", "demo-model"],
        log_path=logs_dir / "demo-model.log",
        env={**os.environ, "FRONTDESK_DEMO_MODEL_PORT": str(port)},
        cwd=REPO_ROOT,
        ready_url=f"http://127.0.0.1:{port}/health",
        ready_timeout=30,
    )
    proc.start()
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def router_url(demo_model_url: str, logs_dir: Path) -> Iterator[str]:
    """The real LiteLLM proxy (its own venv, installed by `make`), upstream = the demo model."""
    venv = REPO_ROOT / ".frontdesk" / "litellm-venv"
    port = free_port()
    config = write_litellm_config(logs_dir / "litellm.yaml", demo_model_url=demo_model_url)
    proc = ManagedProcess(
        name="litellm",
        argv=litellm_command(venv, config, port),
        log_path=logs_dir / "litellm.log",
        env=litellm_env(ROUTER_KEY),
        ready_url=f"http://127.0.0.1:{port}/health/liveliness",
        ready_timeout=90,
    )
    proc.start()
    yield f"http://127.0.0.1:{port}"
    proc.stop()


# --- databases ---------------------------------------------------------------------------------


@dataclass
class SeededDb:
    url: str
    engine: Engine
    tokens: dict[str, str]  # short name -> bearer token
    user_ids: dict[str, str]
    passwords: dict[str, str] = field(default_factory=dict)  # short name -> web sign-in password


def _seed(url: str, state_dir: Path) -> SeededDb:
    migrate(url)
    engine = make_engine(url)
    info = seed_demo(engine, state_dir)
    tokens = {email.split("@")[0]: token for email, token in info.tokens}
    user_ids: dict[str, str] = {}
    with session_scope(engine) as session:
        ensure_tenant(session, "globex", "Globex (test)")
        extra = [
            ("acme", "dev@acme.example", ["developer"]),
            ("globex", "gina@globex.example", ["requester", "approver", "admin"]),
        ]
        for tenant, email, roles in extra:
            user = ensure_user(session, tenant, email, email.split("@")[0].title(), roles)
            tokens[email.split("@")[0]] = ensure_token(session, user, tenant)
        from sqlmodel import select

        from orchestrator.models import User

        for user in session.exec(select(User)):
            user_ids[user.email.split("@")[0]] = user.id
    passwords = {email.split("@")[0]: password for email, password, _ in info.logins}
    return SeededDb(url, engine, tokens, user_ids, passwords)


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDb]:
    root = tmp_path_factory.mktemp("sqlite")
    db = _seed(f"sqlite:///{root / 'frontdesk.db'}", root)
    yield db
    db.engine.dispose()


@pytest.fixture(scope="session")
def postgres_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDb]:
    name = f"frontdesk_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = _seed(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", tmp_path_factory.mktemp("pg"))
    yield db
    db.engine.dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(request: pytest.FixtureRequest) -> SeededDb:
    """SQLite unless a test parametrizes `db` indirectly with "postgres"."""
    backend = getattr(request, "param", "sqlite")
    return request.getfixturevalue(f"{backend}_db")  # type: ignore[no-any-return]


# --- the stack, per test -------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    db: SeededDb
    client: Client
    api: httpx.AsyncClient
    router_url: str
    demo_model_url: str
    extra: dict[str, Any] = field(default_factory=dict)
    app: Any = None  # the ASGI app behind `api` (web tests sign in to it with a session cookie)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.db.tokens[who]}"}

    async def submit(
        self, text: str, *, who: str = "riley", workflow: str = "refund_request@1", **kw: Any
    ) -> dict[str, Any]:
        r = await self.api.post(
            "/api/tasks", json={"workflow": workflow, "input": text, **kw}, headers=self.auth(who)
        )
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    async def task(self, task_id: str, who: str = "ada") -> dict[str, Any]:
        r = await self.api.get(f"/api/tasks/{task_id}", headers=self.auth(who))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def wait(
        self, task_id: str, statuses: set[str], timeout: float = 60, who: str = "ada"
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            task = await self.task(task_id, who)
            if task["status"] in statuses:
                return task
            if task["status"] in TERMINAL and not statuses & TERMINAL:
                raise AssertionError(
                    f"task ended {task['status']} while waiting for {statuses}: {task['error']}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} still {task['status']} after {timeout}s")
            await asyncio.sleep(0.1)

    async def open_checkpoint(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        task = await self.wait(task_id, {"waiting"}, timeout)
        open_cps = [c for c in task["checkpoints"] if c["status"] == "open"]
        assert len(open_cps) == 1, task["checkpoints"]
        return open_cps[0]  # type: ignore[no-any-return]

    async def decide(
        self, cp_id: str, decision: str, who: str = "avery", comment: str = ""
    ) -> httpx.Response:
        return await self.api.post(
            f"/api/checkpoints/{cp_id}/decision",
            json={"decision": decision, "comment": comment},
            headers=self.auth(who),
        )

    def make_order(self, amount: str, currency: str = "EUR", tenant: str = "acme") -> str:
        order_id = f"ORD-{random.randint(100000, 99999999)}"
        with session_scope(self.db.engine) as session:
            session.add(
                DemoOrder(
                    id=order_id,
                    tenant_id=tenant,
                    customer="Test Customer",
                    email="t@example.com",
                    amount=Decimal(amount),
                    currency=currency,
                    status="delivered",
                )
            )
        return order_id


def stack_settings(db: SeededDb, router: str, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db.url,
        "task_queue": f"tq-{secrets.token_hex(6)}",
        "router_url": router,
        "router_api_key": ROUTER_KEY,
        "router_backoff_seconds": 0.05,
        "router_timeout_seconds": 20,
        "state_dir": state_dir,
        "catalog_packages": [DEMO_CATALOG],
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_stack(
    db: SeededDb, client: Client, router_url: str, demo_model_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Stack]:
    """API + one in-process worker on their own task queue, with settings overridden (for
    example other catalog packages, or a time-skipping Temporal's client)."""
    settings = stack_settings(db, router_url, tmp_path, **overrides)
    app = create_app(settings, state=build_state(settings, engine=db.engine, temporal=client))
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as api,
        build_router(settings) as router,
    ):
        async with build_worker(client, settings, engine=db.engine, router=router):
            yield Stack(settings, db, client, api, router_url, demo_model_url, app=app)


@pytest.fixture
async def api_only(
    db: SeededDb, temporal_env: WorkflowEnvironment, router_url: str, demo_model_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The API wired to Temporal and the database, with no worker polling its queue."""
    settings = stack_settings(db, router_url, tmp_path)
    state = build_state(settings, engine=db.engine, temporal=temporal_env.client)
    app = create_app(settings, state=state)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as api:
        yield Stack(settings, db, temporal_env.client, api, router_url, demo_model_url, app=app)


@pytest.fixture
async def stack(api_only: Stack) -> AsyncIterator[Stack]:
    """API + one in-process worker on a fresh task queue."""
    async with build_router(api_only.settings) as router:
        worker = build_worker(api_only.client, api_only.settings, engine=api_only.db.engine, router=router)
        async with worker:
            yield api_only


@pytest.fixture
async def demo_scripts(demo_model_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=demo_model_url) as client:
        yield client
