"""The API learns from the router whether its upstream is the demo model (the page banner)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from orchestrator.demo.model import MODELS
from orchestrator.web.upstream import DEMO_MODELS, RETRY_SECONDS, TTL_SECONDS, UpstreamProbe, simulated_groups


def deployment(tier: str, model: str) -> dict[str, Any]:
    return {"model_name": tier, "litellm_params": {"model": model, "api_base": "http://127.0.0.1:18001/v1"}}


DEMO_INFO = {
    "data": [deployment("tier-frontier", "openai/demo-frontier"), deployment("tier-slm", "openai/demo-slm")]
}
REAL_INFO = {
    "data": [deployment("tier-frontier", "anthropic/claude-sonnet"), deployment("tier-slm", "gpt-4o-mini")]
}


class Router:
    """A fake router's `/model/info`, counting requests; `answer` is a status and a body."""

    def __init__(self, status: int = 200, body: Any = DEMO_INFO) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, Exception):
            raise self.body
        content = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return httpx.Response(self.status, content=content)


def probe_for(router: Router, clock: list[float] | None = None) -> UpstreamProbe:
    now = clock if clock is not None else [0.0]
    return UpstreamProbe(
        "http://router:4011/", "key-1", transport=httpx.MockTransport(router), clock=lambda: now[0]
    )


def answer(probe: UpstreamProbe) -> bool:
    probe.simulated()
    probe.wait(5)
    return probe.simulated()


def test_the_demo_models_are_the_ones_the_demo_model_serves() -> None:
    assert set(MODELS) == DEMO_MODELS


def test_a_deployment_on_the_demo_model_is_simulated() -> None:
    assert simulated_groups(DEMO_INFO) == ["tier-frontier", "tier-slm"]
    assert simulated_groups(REAL_INFO) == []
    mixed = {"data": [*REAL_INFO["data"], deployment("tier-open", "demo-open")]}
    assert simulated_groups(mixed) == ["tier-open"]
    for junk in (None, [], {"data": None}, {"data": [1, {"litellm_params": "x"}]}):
        assert simulated_groups(junk) == []


def test_the_router_is_asked_with_its_key() -> None:
    router = Router()
    assert answer(probe_for(router)) is True
    (request,) = router.requests
    assert str(request.url) == "http://router:4011/model/info"
    assert request.headers["Authorization"] == "Bearer key-1"


def test_no_banner_when_the_router_cannot_tell() -> None:
    for router in (
        Router(body=REAL_INFO),
        Router(status=404, body={"detail": "Not Found"}),  # not LiteLLM
        Router(status=401, body={"error": "key has no access"}),
        Router(body="<html>not json</html>"),
        Router(body=httpx.ConnectError("refused")),
        Router(body=httpx.ReadTimeout("slow")),
    ):
        assert answer(probe_for(router)) is False, router.body


def test_pages_never_wait_and_the_answer_is_cached() -> None:
    gate = threading.Event()
    router = Router()

    def slow(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return router(request)

    clock = [0.0]
    probe = UpstreamProbe("http://router", "k", transport=httpx.MockTransport(slow), clock=lambda: clock[0])
    assert probe.simulated() is False  # asked, not answered yet: no banner, no waiting
    assert probe.simulated() is False  # and still a single probe in flight
    gate.set()
    probe.wait(5)
    assert probe.simulated() is True and len(router.requests) == 1
    clock[0] = TTL_SECONDS - 1
    assert answer(probe) is True and len(router.requests) == 1  # fresh: not asked again
    clock[0] = TTL_SECONDS + 1
    router.body = REAL_INFO  # the router was pointed at a real provider
    assert answer(probe) is False and len(router.requests) == 2


def test_a_failed_probe_is_retried_sooner() -> None:
    clock = [0.0]
    router = Router(body=httpx.ConnectError("router still starting"))
    probe = probe_for(router, clock)
    assert answer(probe) is False
    clock[0] = RETRY_SECONDS + 0.1
    router.body = DEMO_INFO
    assert answer(probe) is True and len(router.requests) == 2
