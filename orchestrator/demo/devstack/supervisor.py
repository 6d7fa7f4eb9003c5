"""`frontdesk dev`: the whole local stack in one command, supervised.

Order: Temporal dev server → demo model → LiteLLM proxy → database migrations + demo seed →
worker → API + UI. Each child waits until ready before the next starts. If a child dies the
stack stops (exit 1, with the child's log tail); Ctrl-C or SIGTERM stops every child in reverse
order (exit 0). A lock file keeps a second copy from starting, and every port is checked first
so a clash is named instead of showing up as a confusing crash half way through.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from orchestrator.anchor_keys import write_private_key
from orchestrator.demo.devstack.litellm import (
    LiteLLMMissing,
    ensure_litellm,
    litellm_command,
    litellm_env,
    write_litellm_config,
)
from orchestrator.demo.devstack.processes import (
    ManagedProcess,
    ProcessError,
    port_is_free,
    temporal_binary,
    temporal_dev_server_command,
)
from orchestrator.settings import Settings

LOCAL_HOST = "127.0.0.1"
# What the dev stack's children load unless FRONTDESK_CATALOG_PACKAGES is set.
DEMO_CATALOG = "orchestrator.demo.catalog"


class SeedInfo(Protocol):
    """What ``orchestrator.demo.seed.prepare_database`` returns (read-only view)."""

    @property
    def logins(self) -> Sequence[tuple[str, str, Sequence[str]]]: ...  # (email, password, roles)

    @property
    def tokens(self) -> Sequence[tuple[str, str]]: ...  # (email, API token)


Prepare = Callable[[Settings], SeedInfo]
Stage = ManagedProcess | Callable[[], Awaitable[None]]


def default_prepare(settings: Settings) -> SeedInfo:
    """Migrate the database and seed the demo tenant, users and tokens."""
    from orchestrator.demo import seed  # lazy: keeps `frontdesk dev --help` and tests light

    return seed.prepare_database(settings)


# --- refusing to start ---------------------------------------------------------------------------


class AlreadyRunning(Exception):
    def __init__(self, pid: str) -> None:
        super().__init__(f"another `frontdesk dev` is running (pid {pid}); stop it first")


@contextlib.contextmanager
def dev_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock on ``path`` (with our pid in it) while inside.

    The kernel drops the lock when the process exits, however it exits, so a stale file never
    blocks the next run. The file is left in place: removing it would race with a new holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise AlreadyRunning(holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class PortNeed:
    host: str
    port: int
    needed_by: str
    setting: str  # the environment variable that moves it


def needed_ports(settings: Settings) -> list[PortNeed]:
    return [
        PortNeed(settings.api_host, settings.api_port, "the API", "FRONTDESK_API_PORT"),
        PortNeed(LOCAL_HOST, settings.router_port, "the LiteLLM proxy", "FRONTDESK_ROUTER_PORT"),
        PortNeed(LOCAL_HOST, settings.demo_model_port, "the demo model", "FRONTDESK_DEMO_MODEL_PORT"),
        PortNeed(LOCAL_HOST, settings.temporal_port, "the Temporal dev server", "FRONTDESK_TEMPORAL_PORT"),
        PortNeed(LOCAL_HOST, settings.temporal_ui_port, "the Temporal web UI", "FRONTDESK_TEMPORAL_UI_PORT"),
    ]


def port_problems(settings: Settings) -> list[str]:
    """One message per port that is configured twice or already in use."""
    problems = []
    seen: dict[int, PortNeed] = {}
    for need in needed_ports(settings):
        if need.port in seen:
            first = seen[need.port]
            problems.append(
                f"port {need.port} is configured for both {first.needed_by} and {need.needed_by}; "
                f"set {need.setting} to another port"
            )
            continue
        seen[need.port] = need
        if not port_is_free(need.host, need.port):
            problems.append(
                f"port {need.port} is busy (needed by {need.needed_by}); "
                f"stop what uses it or set {need.setting}"
            )
    return problems


# --- generic supervision -------------------------------------------------------------------------


class Supervisor:
    """Runs stages in order, then watches the children until one dies or a stop is asked for.

    A stage is a :class:`ManagedProcess` (started and awaited until ready) or an async callable
    (for work between children, such as migrations). Whatever happens, every started child is
    stopped in reverse order before :meth:`run` returns its exit code.
    """

    def __init__(self, out: IO[str], *, watch_interval: float = 0.5) -> None:
        self._out = out
        self._watch_interval = watch_interval
        self._started: list[ManagedProcess] = []

    def say(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def run(self, stages: Sequence[Stage], on_ready: Callable[[], None]) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not main thread
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            return await self._run(stages, on_ready, stop)
        finally:
            await self.stop_all()
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def _run(self, stages: Sequence[Stage], on_ready: Callable[[], None], stop: asyncio.Event) -> int:
        startup = asyncio.create_task(self._start(stages))
        stop_asked = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({startup, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_asked.cancel()
        if not startup.done():
            startup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await startup
            self.say("\ninterrupted during startup; stopping")
            return 0
        if (error := startup.exception()) is not None:
            detail = str(error) if isinstance(error, ProcessError) else f"{type(error).__name__}: {error}"
            self.say(f"\nstartup failed: {detail}")
            return 1
        on_ready()
        dead = await self._watch(stop)
        if dead is not None:
            self.say(f"\n{dead.failure(f'exited unexpectedly ({exit_text(dead.returncode)})')}")
            self.say("stopping everything")
            return 1
        self.say("\nstopping")
        return 0

    async def _start(self, stages: Sequence[Stage]) -> None:
        for stage in stages:
            if isinstance(stage, ManagedProcess):
                self.say(f"starting {stage.name} ...")
                await stage.astart()  # stops its own child if it fails or is cancelled
                self._started.append(stage)
            else:
                await stage()

    async def _watch(self, stop: asyncio.Event) -> ManagedProcess | None:
        while not stop.is_set():
            for process in self._started:
                if process.returncode is not None:
                    return process
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._watch_interval)
        return None

    async def stop_all(self) -> None:
        while self._started:
            process = self._started.pop()
            code = await process.astop()
            self.say(f"stopped {process.name} ({exit_text(code)})")


def exit_text(code: int | None) -> str:
    """`exit code 3`, or `SIGTERM` for a child ended by a signal (Popen reports -signum)."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return f"exit code {code}"


# --- the Frontdesk dev stack ---------------------------------------------------------------------


def _client_host(host: str) -> str:
    """Where to connect to a server bound to ``host`` (a wildcard bind is reached on loopback)."""
    return LOCAL_HOST if host in {"", "0.0.0.0", "::"} else host


class DevStack:
    def __init__(self, settings: Settings, *, prepare: Prepare, out: IO[str]) -> None:
        self.settings = settings
        self.prepare = prepare
        self.supervisor = Supervisor(out)
        self.seed: SeedInfo | None = None
        self.started_at = time.monotonic()
        state = settings.state_dir
        self.logs_dir = state / "logs"
        self.api_url = f"http://{_client_host(settings.api_host)}:{settings.api_port}"
        self.router_url = f"http://{LOCAL_HOST}:{settings.router_port}"
        self.demo_model_url = f"http://{LOCAL_HOST}:{settings.demo_model_port}"
        self.temporal_address = f"{LOCAL_HOST}:{settings.temporal_port}"
        self.temporal_ui_url = f"http://{LOCAL_HOST}:{settings.temporal_ui_port}"

    def child_env(self) -> dict[str, str]:
        """Our environment plus the FRONTDESK_* values that point a child at this stack.

        The children load the sample catalog, which works offline with the demo model, unless
        FRONTDESK_CATALOG_PACKAGES was set (to anything, `[]` included)."""
        s = self.settings
        packages = s.catalog_packages if "catalog_packages" in s.model_fields_set else [DEMO_CATALOG]
        env = dict(os.environ)
        env.update(
            {
                "FRONTDESK_CATALOG_PACKAGES": json.dumps(packages),
                "FRONTDESK_STATE_DIR": str(s.state_dir),
                "FRONTDESK_TEMPORAL_ADDRESS": self.temporal_address,
                "FRONTDESK_TEMPORAL_NAMESPACE": s.temporal_namespace,
                "FRONTDESK_TASK_QUEUE": s.task_queue,
                "FRONTDESK_ROUTER_URL": self.router_url,
                "FRONTDESK_ROUTER_API_KEY": s.router_api_key,
                "FRONTDESK_API_HOST": s.api_host,
                "FRONTDESK_API_PORT": str(s.api_port),
                "FRONTDESK_DEMO_MODEL_PORT": str(s.demo_model_port),
                "PYTHONUNBUFFERED": "1",  # logs appear as they happen
            }
        )
        if s.database_url:
            env["FRONTDESK_DATABASE_URL"] = s.database_url
        # On this machine only (loopback): /metrics open, and the audit chain anchored to a file in
        # the state folder with keys kept there (HMAC and Ed25519), unless the person chose otherwise.
        if not ({"metrics_public", "metrics_token"} & s.model_fields_set):
            env["FRONTDESK_METRICS_PUBLIC"] = "true"
        if "audit_anchor_file" not in s.model_fields_set:
            env["FRONTDESK_AUDIT_ANCHOR_FILE"] = str(s.state_dir / "audit-anchors.jsonl")
            if "audit_anchor_key" not in s.model_fields_set:
                env["FRONTDESK_AUDIT_ANCHOR_KEY"] = self._dev_anchor_key()
            if "audit_anchor_signing_key_file" not in s.model_fields_set:
                signing = s.state_dir / "audit-anchor-ed25519.pem"
                if not signing.exists():
                    write_private_key(signing)  # 0600; `frontdesk audit public-key` prints its public half
                env["FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE"] = str(signing)
        return env

    def _dev_anchor_key(self) -> str:
        """The dev stack's anchor key: made once, kept in the state folder (owner-only)."""
        path = self.settings.state_dir / "audit-anchor.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def _frontdesk(self, command: str, *, ready_url: str | None = None) -> ManagedProcess:
        """A `frontdesk <command>` child, run with our Python so it sees the same install."""
        return ManagedProcess(
            name=command,
            argv=[sys.executable, "-m", "orchestrator.cli.main", command],
            env=self.child_env(),
            log_path=self.logs_dir / f"{command}.log",
            ready_url=ready_url,
        )

    def stages(self) -> list[Stage]:
        """Every stage, in start order. Raises early if the Temporal or LiteLLM binary is missing."""
        s = self.settings
        temporal = ManagedProcess(
            name="temporal",
            argv=temporal_dev_server_command(
                temporal_binary(),
                db_file=s.state_dir / "temporal.db",
                port=s.temporal_port,
                ui_port=s.temporal_ui_port,
                namespace=s.temporal_namespace,
            ),
            log_path=self.logs_dir / "temporal.log",
            # The UI answering for the namespace means the frontend serves it too.
            ready_url=f"{self.temporal_ui_url}/api/v1/namespaces/{s.temporal_namespace}",
            ready_port=s.temporal_port,
        )
        config = write_litellm_config(
            s.state_dir / "litellm.yaml",
            demo_model_url=self.demo_model_url,
            prices_file=s.policies_dir / "prices.yaml",
        )
        router = ManagedProcess(
            name="router",
            argv=litellm_command(s.router_venv, config, s.router_port),
            env=litellm_env(s.router_api_key),
            log_path=self.logs_dir / "router.log",
            ready_url=f"{self.router_url}/health/liveliness",
            ready_timeout=120.0,
        )
        return [
            temporal,
            self._frontdesk("demo-model", ready_url=f"{self.demo_model_url}/health"),
            router,
            self._prepare_database,
            self._frontdesk("worker"),  # no port to probe; the supervisor notices if it dies
            # Ready when a page renders; that first page also starts the API's probe of the router's
            # upstream, so the demo-model banner is known by the time a person opens a page.
            self._frontdesk("api", ready_url=f"{self.api_url}/login"),
        ]

    async def _prepare_database(self) -> None:
        self.supervisor.say("migrating and seeding the database ...")
        self.seed = await asyncio.to_thread(self.prepare, self.settings)

    async def run(self) -> int:
        try:
            stages = self.stages()
        except (LiteLLMMissing, ProcessError, ValueError, OSError) as exc:
            self.supervisor.say(f"cannot start the dev stack: {exc}")
            return 1
        return await self.supervisor.run(stages, self.print_banner)

    def print_banner(self) -> None:
        say = self.supervisor.say
        s = self.settings
        say(f"\nFrontdesk dev stack is up (started in {time.monotonic() - self.started_at:.1f} s)\n")
        rows = [
            ("web UI (sign in)", f"{self.api_url}/login"),
            ("REST API", f"{self.api_url}/api"),
            ("API docs", f"{self.api_url}/docs"),
            ("metrics (Prometheus)", f"{self.api_url}/metrics"),
            ("Temporal web UI", self.temporal_ui_url),
            ("Temporal", f"{self.temporal_address} (namespace {s.temporal_namespace})"),
            ("LLM router", f"{self.router_url} (LiteLLM proxy)"),
            ("demo model (deterministic, not an LLM)", self.demo_model_url),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            say(f"  {label:<{width}}  {value}")
        if self.seed is not None:
            if self.seed.logins:
                say("\n  demo logins for the web UI (email / password / roles in acme):")
                for email, password, roles in self.seed.logins:
                    say(f"    {email} / {password} / {', '.join(roles)}")
            if self.seed.tokens:
                say("\n  API tokens (Authorization: Bearer <token>):")
                for email, token in self.seed.tokens:
                    say(f"    {email}: {token}")
        say(f"\n  logs: {self.logs_dir}/<name>.log")
        say("\nPress Ctrl-C to stop.")


def run_dev_stack(
    settings: Settings,
    *,
    prepare: Prepare = default_prepare,
    out: IO[str] | None = None,
    install_router: Callable[[Path, Callable[[str], None]], object] = ensure_litellm,
) -> int:
    """Start and supervise the local stack until Ctrl-C; return the process exit code.

    The first run installs the LiteLLM proxy into `<state_dir>/litellm-venv` (`install_router`)."""
    stream = out if out is not None else sys.stdout

    def say(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    try:
        with dev_lock(settings.state_dir / "dev.lock"):
            if problems := port_problems(settings):
                for problem in problems:
                    say(problem)
                return 1
            try:
                install_router(settings.router_venv, say)
            except (LiteLLMMissing, OSError) as exc:
                say(f"cannot start the dev stack: {exc}")
                return 1
            return asyncio.run(DevStack(settings, prepare=prepare, out=stream).run())
    except AlreadyRunning as exc:
        stream.write(f"{exc}\n")
        return 1
