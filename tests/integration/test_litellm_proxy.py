"""The real LiteLLM proxy, configured by the dev stack, in front of a stand-in upstream.

Checks the parts of the router contract Frontdesk relies on (see ROUTER.md): tier aliases,
the cost header priced from our config, the model-group header, client `x-*` headers forwarded
upstream, and what a failing upstream turns into.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from repo_paths import REPO_ROOT

from orchestrator.demo.devstack.litellm import (
    LiteLLMMissing,
    litellm_command,
    litellm_env,
    write_litellm_config,
)
from orchestrator.demo.devstack.processes import ManagedProcess, free_port

pytestmark = pytest.mark.router

MASTER_KEY = "test-router-master-key"
USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}


@dataclass
class Upstream:
    """A tiny OpenAI-compatible server: fixed answers and usage, records what reached it."""

    fail_models: set[str] = field(default_factory=set)
    usage: dict[str, Any] = field(default_factory=lambda: dict(USAGE))
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                with upstream.lock:
                    upstream.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                    failing = body.get("model") in upstream.fail_models
                    usage = upstream.usage
                if failing:
                    self._answer(500, {"error": {"message": "upstream boom", "type": "server_error"}})
                    return
                self._answer(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "fixed answer"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        return Handler

    def models_called(self) -> list[str]:
        with self.lock:
            return [r["body"].get("model") for r in self.requests]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.fail_models.clear()
            self.usage = dict(USAGE)


@dataclass
class Proxy:
    url: str
    upstream: Upstream
    config: dict[str, Any]
    startup_seconds: float

    def chat(self, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
            headers={"authorization": f"Bearer {MASTER_KEY}", **(headers or {})},
            timeout=30,
            trust_env=False,
        )

    def prices(self, tier: str) -> dict[str, float]:
        for entry in self.config["model_list"]:
            if entry["model_name"] == tier:
                return entry["litellm_params"]
        raise KeyError(tier)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    venv = REPO_ROOT / ".frontdesk" / "litellm-venv"  # installed by make (make router)
    try:
        litellm_command(venv, Path("unused.yaml"), 0)
    except LiteLLMMissing as exc:
        pytest.skip(f"the LiteLLM proxy venv is not installed: {exc}")

    upstream = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), upstream.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    work = tmp_path_factory.mktemp("litellm")
    config_path = write_litellm_config(
        work / "litellm.yaml", demo_model_url=f"http://127.0.0.1:{server.server_address[1]}"
    )
    port = free_port()
    process = ManagedProcess(
        name="router",
        argv=litellm_command(venv, config_path, port),
        env=litellm_env(MASTER_KEY),
        log_path=work / "router.log",
        ready_url=f"http://127.0.0.1:{port}/health/liveliness",
        ready_timeout=120,
    )
    began = time.monotonic()
    process.start()
    try:
        yield Proxy(
            url=f"http://127.0.0.1:{port}",
            upstream=upstream,
            config=yaml.safe_load(config_path.read_text()),
            startup_seconds=time.monotonic() - began,
        )
    finally:
        process.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture
def router(proxy: Proxy) -> Proxy:
    proxy.upstream.reset()
    return proxy


def test_tier_call_reports_cost_priced_from_config(router: Proxy) -> None:
    response = router.chat("tier-frontier")

    assert response.status_code == 200, response.text
    assert response.headers["x-litellm-model-group"] == "tier-frontier"
    assert router.upstream.models_called() == ["demo-frontier"]
    usage = response.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1000, 200)
    prices = router.prices("tier-frontier")
    expected = (
        usage["prompt_tokens"] * prices["input_cost_per_token"]
        + usage["completion_tokens"] * prices["output_cost_per_token"]
    )
    cost = float(response.headers["x-litellm-response-cost"])
    assert cost > 0
    assert cost == pytest.approx(expected, rel=1e-9)  # 1000 * 5e-6 + 200 * 25e-6 = 0.01


def test_cached_prompt_tokens_are_priced_at_the_cache_read_price(router: Proxy) -> None:
    router.upstream.usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 800}}

    response = router.chat("tier-frontier")

    assert response.status_code == 200, response.text
    prices = router.prices("tier-frontier")
    expected = (
        200 * prices["input_cost_per_token"]
        + 800 * prices["cache_read_input_token_cost"]
        + 200 * prices["output_cost_per_token"]
    )
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-9)


def test_client_x_headers_reach_the_upstream(router: Proxy) -> None:
    response = router.chat("tier-slm", headers={"x-frontdesk-task-id": "task-42"})

    assert response.status_code == 200, response.text
    [request] = router.upstream.requests
    assert request["headers"].get("x-frontdesk-task-id") == "task-42"
    assert request["body"]["model"] == "demo-slm"


def test_failing_frontier_falls_back_to_open_tier(router: Proxy) -> None:
    router.upstream.fail_models.add("demo-frontier")

    response = router.chat("tier-frontier")

    # Observed: the configured fallback answers; the headers say which group served it.
    assert response.status_code == 200, response.text
    assert router.upstream.models_called() == ["demo-frontier", "demo-open"]
    assert response.headers["x-litellm-model-group"] == "tier-open"
    assert response.headers.get("x-litellm-attempted-fallbacks") == "1"
    prices = router.prices("tier-open")
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(
        1000 * prices["input_cost_per_token"] + 200 * prices["output_cost_per_token"], rel=1e-9
    )

    # The failure does not stick: once the upstream recovers, the frontier tier answers again.
    router.upstream.fail_models.clear()
    again = router.chat("tier-frontier")
    assert again.status_code == 200, again.text
    assert again.headers["x-litellm-model-group"] == "tier-frontier"


def test_failing_tier_without_fallback_answers_5xx(router: Proxy) -> None:
    router.upstream.fail_models.add("demo-slm")

    response = router.chat("tier-slm")

    assert 500 <= response.status_code < 600, response.text
    assert router.upstream.models_called() == ["demo-slm"]  # num_retries: 0 → one attempt
