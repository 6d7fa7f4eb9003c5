"""`frontdesk api` as a real process: SIGTERM while a live timeline stream is open and a request is in
flight. The stream ends at once (it would otherwise hold shutdown for its 600 s), the request in
flight still gets its whole answer, and the process exits 0 without uvicorn cancelling anything at
the end of the grace period.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DEMO_CATALOG, SeededDb
from temporalio.testing import WorkflowEnvironment

from orchestrator.demo.devstack.processes import free_port

pytestmark = pytest.mark.slow
GRACE_SECONDS = 120  # far longer than the test: an exit before it means nothing held shutdown
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def silent_router() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A router that accepts connections and never answers: /readyz waits on it ~2.5 s."""
    held: list[asyncio.StreamWriter] = []
    asked = asyncio.Event()

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        asked.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], asked
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def api_process(
    sqlite_db: SeededDb, temporal_env: WorkflowEnvironment, silent_router: Any, tmp_path: Path
) -> Iterator[Any]:
    port = free_port()
    env = {
        **os.environ,
        "FRONTDESK_DATABASE_URL": sqlite_db.url,
        "FRONTDESK_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "FRONTDESK_TASK_QUEUE": f"tq-nobody-polls-{port}",  # the task stays queued: its stream stays open
        "FRONTDESK_CATALOG_PACKAGES": json.dumps([DEMO_CATALOG]),
        "FRONTDESK_ROUTER_URL": f"http://127.0.0.1:{silent_router[0]}",
        "FRONTDESK_STATE_DIR": str(tmp_path),
        "FRONTDESK_API_PORT": str(port),
        "FRONTDESK_API_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli.main", "api"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.url, proc.log = f"http://127.0.0.1:{port}", log  # type: ignore[attr-defined]  # for the test
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def cookie_of(response: httpx.Response, name: str) -> str:
    """Read a `__Host-` cookie by hand: it is Secure, and this test speaks plain HTTP to 127.0.0.1."""
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return value.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {response.headers}")


async def test_sigterm_ends_streams_and_lets_requests_finish(
    api_process: Any, sqlite_db: SeededDb, silent_router: Any
) -> None:
    async with httpx.AsyncClient(base_url=api_process.url, trust_env=False, timeout=30) as http:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert api_process.poll() is None, api_process.log.read_text()
            assert asyncio.get_running_loop().time() < deadline, api_process.log.read_text()
            await asyncio.sleep(0.2)

        r = await http.post(
            "/api/tasks",
            json={"workflow": "refund_request@1", "input": "Refund order ORD-1 please"},
            headers={"Authorization": f"Bearer {sqlite_db.tokens['riley']}"},
        )
        assert r.status_code == 202, r.text
        task_id = r.json()["id"]

        form = await http.get("/login")
        login_cookie = cookie_of(form, "__Host-frontdesk_login")
        found = CSRF.search(form.text)
        assert found
        r = await http.post(
            "/login",
            data={"email": "riley@acme.example", "password": sqlite_db.passwords["riley"], "csrf_token": found.group(1)},
            headers={"Cookie": f"__Host-frontdesk_login={login_cookie}"},
        )
        assert r.status_code == 303, r.text[:500]
        session = {"Cookie": f"__Host-frontdesk_session={cookie_of(r, '__Host-frontdesk_session')}"}

        async with http.stream("GET", f"/tasks/{task_id}/events", headers=session) as events:
            assert events.status_code == 200
            received = ""
            lines = events.aiter_lines()
            while "event: timeline" not in received:
                received += await anext(lines) + "\n"
            assert (await anext(lines)).startswith("data:")  # the first timeline is on its way: the stream is live

            # A request in flight: /readyz waits on the router, which never answers.
            _port, asked = silent_router
            ready = asyncio.create_task(http.get("/readyz"))
            await asyncio.wait_for(asked.wait(), 30)

            api_process.send_signal(signal.SIGTERM)
            async for line in lines:  # ends when the server ends the stream
                received += line + "\n"

        answer = await ready
        assert answer.status_code == 503
        assert "did not answer within" in answer.json()["checks"]["router"]["detail"]

    code = await asyncio.to_thread(api_process.wait, GRACE_SECONDS)
    output = api_process.log.read_text()
    assert code == 0, output
    assert "API shutting down: live streams end now, requests in flight get 120 s" in output
    assert "timeout graceful shutdown exceeded" not in output  # nothing was cancelled
    assert "event: done" not in received  # the task has not ended; the browser will reconnect
