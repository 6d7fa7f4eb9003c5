"""The API process under uvicorn, with a graceful shutdown.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the requests in flight,
at most `FRONTDESK_API_SHUTDOWN_GRACE_SECONDS`, before it cancels them. A live timeline stream
(server-sent events) never finishes on its own, so it would hold the whole grace period: before
uvicorn starts waiting, :class:`GracefulServer` sets the app's `shutting_down` event, and the
streams end at their next poll (the browser reconnects, through the load balancer, to a replica
that is still up) while `/readyz` answers 503.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from orchestrator.app import create_app
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, shutting_down: threading.Event) -> None:
        super().__init__(config)
        self._shutting_down = shutting_down

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._shutting_down.set()
        log.info(
            "API shutting down: live streams end now, requests in flight get %s s",
            self.config.timeout_graceful_shutdown,
        )
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, minus re-raising the signal once shut down: a shutdown that went as planned
        ends the process with status 0 (as the worker's does), not "killed by SIGTERM"."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(settings: Settings) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        timeout_graceful_shutdown=settings.api_shutdown_grace_seconds,
    )
    GracefulServer(config, app.state.shutting_down).run()
