"""Is the router's upstream Frontdesk's demo model? Asked of the router, for the page banner.

The pages warn that answers, tokens and costs are simulated when, and only when, the LLM router
sends a tier to the demo model. The API process asks the router itself: LiteLLM's
``GET /model/info`` (with the router key) lists every deployment with its ``litellm_params``; a
deployment whose upstream model is one the demo model serves (:data:`DEMO_MODELS`) is simulated.
A router that does not answer that question (not LiteLLM, a key without the right, down, slow)
counts as "not simulated", so production never shows the banner by accident.

The answer is cached for :data:`TTL_SECONDS` (:data:`RETRY_SECONDS` after a failed probe). A page
never waits for the router: it uses the answer at hand (none yet: no banner) and, when that is
stale, a background thread asks again. This is metadata about the router, not a model call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger(__name__)

# The model names the demo model serves (orchestrator/demo/model.py MODELS; a test keeps them equal).
DEMO_MODELS = frozenset({"demo-frontier", "demo-open", "demo-slm"})
PROBE_TIMEOUT_SECONDS = 2.0
TTL_SECONDS = 60.0
RETRY_SECONDS = 10.0


def simulated_groups(info: Any) -> list[str]:
    """The router's model groups (tiers) whose upstream is the demo model, from `/model/info`."""
    entries = info.get("data") if isinstance(info, dict) else None
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        model = str(params.get("model", "")) if isinstance(params, dict) else ""
        if model.rsplit("/", 1)[-1] in DEMO_MODELS:  # "openai/demo-frontier": provider/model
            found.append(str(entry.get("model_name", model)))
    return found


class UpstreamProbe:
    """Answers :meth:`simulated` from a cache that a background thread keeps fresh."""

    def __init__(
        self,
        router_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = router_url.rstrip("/") + "/model/info"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._answer = False
        self._expires: float | None = None  # None: never asked
        self._thread: threading.Thread | None = None  # the refresh in flight, kept to never run two

    def simulated(self) -> bool:
        """Whether the router's upstream is the demo model, as last known; never waits."""
        with self._lock:
            stale = self._expires is None or self._clock() >= self._expires
            if stale and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self.refresh, name="router-upstream-probe", daemon=True
                )
                self._thread.start()
            return self._answer

    def wait(self, timeout: float) -> None:
        """Wait for the refresh in flight, if any (tests and warm-ups)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def refresh(self) -> None:
        answer = self.probe()
        with self._lock:
            self._answer = bool(answer)
            self._expires = self._clock() + (TTL_SECONDS if answer is not None else RETRY_SECONDS)

    def probe(self) -> bool | None:
        """Ask the router now: True or False, or None when it cannot tell."""
        try:
            with httpx.Client(transport=self._transport, timeout=PROBE_TIMEOUT_SECONDS) as client:
                response = client.get(self._url, headers=self._headers)
            if response.status_code != 200:
                log.info("router upstream unknown: GET /model/info answered %s", response.status_code)
                return None
            return bool(simulated_groups(response.json()))
        except (httpx.HTTPError, ValueError) as exc:
            log.info("router upstream unknown: %s", type(exc).__name__)
            return None
