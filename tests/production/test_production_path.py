"""The production path, as an operator runs it: the wheel built from this checkout, installed into a
fresh venv, run from an empty folder in production mode on PostgreSQL against a Temporal server.

migrate -> tenant/user/token bootstrap from the CLI -> two API processes and two workers ->
tasks submitted through one API, their checkpoints decided through the other -> one worker
SIGKILLed mid-run. Every task completes, no refund happens twice, the audit chain verifies, and
no log holds a traceback.

Nothing here imports the checkout's code into the processes under test: they run the installed
console script with a clean environment, so a file missing from the wheel fails this test.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import PG_ADMIN_URL, ROUTER_KEY
from repo_paths import REPO_ROOT
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from orchestrator.audit import verify_chain
from orchestrator.db import make_engine, session_scope
from orchestrator.demo.catalog.tables import DemoOrder, RefundLedger
from orchestrator.demo.devstack.processes import ManagedProcess, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.router, pytest.mark.timeout(900)]

TASKS = 6
SKIP_IN_COPY = shutil.ignore_patterns(
    ".git", ".venv", ".frontdesk", "build", "dist", "*.egg-info", "__pycache__", "artifacts", "node_modules"
)


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`{' '.join(argv)}` exited {done.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in output, output
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `frontdesk` console script of the wheel, installed into a fresh venv (not the checkout's)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO_ROOT, source, ignore=SKIP_IN_COPY)  # build from a copy: the checkout stays clean
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)], cwd=root)
    wheels = list((root / "dist").glob("frontdesk-*.whl"))
    assert len(wheels) == 1, wheels
    run([sys.executable, "-m", "venv", str(root / "venv")], cwd=root)
    run([str(root / "venv" / "bin" / "pip"), "install", "-q", str(wheels[0])], cwd=root)
    return root / "venv" / "bin" / "frontdesk"


@pytest.fixture
def database() -> Iterator[str]:
    name = f"frontdesk_prod_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Site:
    """An empty folder with the installed CLI and the production settings of every process."""

    frontdesk: Path
    folder: Path
    env: dict[str, str]
    procs: list[ManagedProcess] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return run([str(self.frontdesk), *args], cwd=self.folder, env=self.env, stdin=stdin)

    def start(self, name: str, command: str, *, port: int | None = None, ready: str = "") -> ManagedProcess:
        env = dict(self.env)
        if port is not None:
            env["FRONTDESK_API_PORT"] = str(port)
        log = self.folder / f"{name}.log"
        proc = ManagedProcess(
            name=name,
            argv=[str(self.frontdesk), command],
            log_path=log,
            env=env,
            cwd=self.folder,
            ready_url=f"http://127.0.0.1:{port}/readyz" if port is not None else None,
            ready_check=None if port is not None else lambda: log.exists() and ready in log.read_text(),
            ready_timeout=90,
        )
        proc.start()
        self.procs.append(proc)
        return proc

    def logs(self) -> dict[str, str]:
        return {p.name: p.log_path.read_text(errors="replace") for p in self.procs if p.log_path.exists()}


@pytest.fixture
def site(
    installed: Path, database: str, temporal_env: WorkflowEnvironment, router_url: str, tmp_path: Path
) -> Iterator[Site]:
    folder = tmp_path / "empty"
    folder.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FRONTDESK_ENVIRONMENT": "production",
        "FRONTDESK_DATABASE_URL": database,
        "FRONTDESK_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "FRONTDESK_TASK_QUEUE": f"prod-{secrets.token_hex(4)}",
        "FRONTDESK_ROUTER_URL": router_url,
        "FRONTDESK_ROUTER_API_KEY": ROUTER_KEY,
        "FRONTDESK_CATALOG_PACKAGES": json.dumps(["orchestrator.demo.catalog"]),
        # The refund tool holds its activity open (heartbeating) for a second after its ledger
        # write, so the kill below lands while tool activities are in flight.
        "FRONTDESK_CATALOG_SETTINGS": json.dumps({"orchestrator.demo.catalog": {"tool_delay_seconds": 1}}),
    }
    s = Site(installed, folder, env)
    yield s
    for proc in reversed(s.procs):
        proc.stop()


async def test_two_apis_two_workers_on_postgres_from_the_installed_wheel(site: Site, database: str) -> None:
    # 1. Schema and the first people, from the CLI alone.
    assert "newest schema" in site.cli("migrate")
    site.cli("tenant", "add", "acme", "--name", "Acme Corp")
    site.cli("user", "add", "rita@acme.example", "--tenant", "acme", "--role", "requester", "--password-stdin",
             stdin="correct horse battery staple\n")  # fmt: skip
    generated = site.cli("user", "add", "abe@acme.example", "--tenant", "acme", "--role", "approver")
    assert "password" in generated.lower()
    requester = site.cli("token", "add", "rita@acme.example", "--tenant", "acme").strip().splitlines()[-1]
    approver = site.cli("token", "add", "abe@acme.example", "--tenant", "acme").strip().splitlines()[-1]
    assert "rita@acme.example" in site.cli("user", "list", "--tenant", "acme")

    engine = make_engine(database)
    orders = [f"ORD-{secrets.randbelow(10**8):08d}" for _ in range(TASKS)]  # the demo model reads ORD-<digits>
    with session_scope(engine) as session:  # the demo catalog's own data: what its refund tool works on
        for order in orders:
            session.add(DemoOrder(id=order, tenant_id="acme", customer="C", email="c@example.com",
                                  amount=Decimal("600.00"), currency="EUR", status="delivered"))  # fmt: skip

    # 2. Two API processes and two workers, all from the installed console script.
    ports = [free_port(), free_port()]
    site.start("api-1", "api", port=ports[0])
    site.start("api-2", "api", port=ports[1])
    first = site.start("worker-1", "worker", ready="worker polling")
    site.start("worker-2", "worker", ready="worker polling")

    one = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=30)
    other = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30)
    as_requester = {"Authorization": f"Bearer {requester}"}
    as_approver = {"Authorization": f"Bearer {approver}"}
    async with one, other:
        for api in (one, other):
            ready = await api.get("/readyz")
            assert ready.status_code == 200, ready.text

        # 3. Submit through one API ...
        ids = []
        for order in orders:
            r = await one.post(
                "/api/tasks",
                json={"workflow": "refund_request@1", "input": f"Refund 200 EUR on order {order}, wrong size."},
                headers=as_requester,
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])

        async def task(api: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
            r = await api.get(f"/api/tasks/{task_id}", headers=as_requester)
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        async def until(api: httpx.AsyncClient, task_id: str, statuses: set[str], timeout: float) -> dict[str, Any]:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                t = await task(api, task_id)
                if t["status"] in statuses:
                    return t
                assert t["status"] not in {"failed", "rejected", "cancelled"}, t
                assert asyncio.get_running_loop().time() < deadline, f"{task_id} still {t['status']}: {t}"
                await asyncio.sleep(0.2)

        # ... and decide every checkpoint through the other.
        for task_id in ids:
            waiting = await until(other, task_id, {"waiting"}, 120)
            (cp,) = [c for c in waiting["checkpoints"] if c["status"] == "open"]
            r = await other.post(f"/api/checkpoints/{cp['id']}/decision", json={"decision": "approve"},
                                 headers=as_approver)  # fmt: skip
            assert r.status_code == 200, r.text

        # 4. One worker dies mid-run, while the approved refunds execute.
        unfinished = [t for t in [await task(one, i) for i in ids] if t["status"] != "completed"]
        assert unfinished, "every task had already completed: the kill would not land mid-run"
        assert first.pid is not None
        os.killpg(first.pid, signal.SIGKILL)
        first.stop()

        done = [await until(one, task_id, {"completed"}, 240) for task_id in ids]

    # Every task completed, each refund happened once, the chain verifies.
    assert [t["status"] for t in done] == ["completed"] * TASKS
    with session_scope(engine) as session:
        refunds = session.exec(select(RefundLedger).where(col(RefundLedger.order_id).in_(orders))).all()
        assert sorted(r.order_id for r in refunds) == sorted(orders)
        assert verify_chain(session, "acme")[0]
    engine.dispose()

    # The survivors shut down cleanly on SIGTERM, and no process logged a traceback.
    for proc in site.procs:
        if proc is not first:
            assert proc.stop() == 0, f"{proc.name} did not exit cleanly:\n{proc.tail()}"
    for name, text in site.logs().items():
        assert "Traceback" not in text, f"{name}.log:\n{text[-4000:]}"


def test_frontdesk_dev_from_the_installed_wheel_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    """`pip install frontdesk-*.whl && frontdesk dev`: the first run installs the LiteLLM router into
    ./.frontdesk itself and says so, the whole stack comes up, and a task runs end to end."""
    folder = tmp_path / "anywhere"
    folder.mkdir()
    ports = {name: free_port() for name in ("API", "ROUTER", "DEMO_MODEL", "TEMPORAL", "TEMPORAL_UI")}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **{f"FRONTDESK_{name}_PORT": str(port) for name, port in ports.items()},
    }
    log = folder / "dev.log"
    dev = ManagedProcess(
        name="dev",
        argv=[str(installed), "dev"],
        log_path=log,
        env=env,
        cwd=folder,
        ready_check=lambda: "dev stack is up" in log.read_text(errors="replace"),
        ready_timeout=600,  # the first run installs the router (from the pip cache on CI)
    )
    try:
        dev.start()
        out = log.read_text()
        assert "installing the LiteLLM router" in out and "the LiteLLM router is installed" in out
        assert (folder / ".frontdesk" / "litellm-venv" / "bin" / "litellm").is_file()
        assert (folder / ".frontdesk" / "cli-token").is_file()  # state in ./.frontdesk, not the package

        submitted = run(
            [str(installed), "task", "submit", "refund_request",
             "Order ORD-1001: the customer wants 30 EUR back, the mug arrived chipped.", "--wait"],
            cwd=folder, env=env,
        )  # fmt: skip
        assert "completed" in submitted, submitted
        page = httpx.get(f"http://127.0.0.1:{ports['API']}/static/app.css", timeout=10)
        assert page.status_code == 200 and page.text.strip()
    finally:
        code = dev.stop()
    assert code == 0, dev.tail()
    assert "Traceback" not in log.read_text()
    for child_log in (folder / ".frontdesk" / "logs").glob("*.log"):
        if child_log.name != "router.log":  # LiteLLM's own log is not ours to police
            assert "Traceback" not in child_log.read_text(errors="replace"), child_log.name
