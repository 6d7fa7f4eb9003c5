"""The API + UI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator import audit_anchor, health, metrics, telemetry
from orchestrator.api import errors
from orchestrator.api.inputs import RefuseNul
from orchestrator.api.routes import (
    audit,
    budgets,
    catalog,
    checkpoints,
    cost,
    model_calls,
    observability,
    policies,
    switches,
    tasks,
    users,
)
from orchestrator.budgets.service import load_service
from orchestrator.catalog.loader import load_catalog
from orchestrator.db import make_engine
from orchestrator.policy.engine import PolicyEngine
from orchestrator.services.intake import Intake
from orchestrator.services.state import AppState
from orchestrator.services.switches import SwitchService
from orchestrator.settings import Settings
from orchestrator.web import pages as web

log = logging.getLogger(__name__)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413 before anything parses them.

    Bodies are small by design (documents go by reference), so the body is buffered here, which
    also catches chunked uploads that declare no Content-Length.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # only a disconnect can come after the body
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if web.is_page_path(scope["path"]):
            await web.too_large_page(self.limit)(scope, receive, send)
            return
        response = errors.problem(
            413,
            "Payload too large",
            f"The request body is over the limit of {self.limit} bytes (FRONTDESK_MAX_INPUT_BYTES). "
            "Send a shorter input or attach large documents by reference.",
        )
        await response(scope, receive, send)


def build_state(settings: Settings, **overrides: Any) -> AppState:
    """Everything the API process holds, wired once (tests override parts, e.g. `temporal`)."""
    engine = overrides.pop("engine", None) or make_engine(settings.effective_database_url)
    catalog = overrides.pop("catalog", None) or load_catalog(settings.catalog_packages)
    parts: dict[str, Any] = {
        "settings": settings,
        "engine": engine,
        "policy": PolicyEngine(settings.policies_dir),
        "catalog": catalog,
        "intake": Intake.from_catalog(catalog),
        "budgets": load_service(engine, settings.policies_dir),
        "switches": SwitchService(engine, cache_seconds=settings.switch_cache_seconds),
    }
    parts.update(overrides)
    return AppState(**parts)


def create_app(settings: Settings, *, state: AppState | None = None) -> FastAPI:
    # Before the Temporal client connects: it takes its tracing interceptor from here.
    tracing = telemetry.configure(settings, "api")
    serve = settings.metrics_public or bool(settings.metrics_token.get_secret_value())
    metrics.configure(settings, "api", prometheus=serve)
    if state is None:
        state = build_state(settings)
    engine = state.engine
    metrics.observe_state(lambda: metrics.house_state(engine))  # nothing with metrics off

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.frontdesk = state
        async with audit_anchor.periodic(settings, state.engine):  # FRONTDESK_AUDIT_ANCHOR_FILE
            yield
        state.engine.dispose()

    app = FastAPI(
        title="Frontdesk",
        version="0.1.0",
        summary="Front-of-house control plane for AI agents",
        description=(
            "Submit tasks, follow them, clear human checkpoints. Authenticate with "
            "`Authorization: Bearer <token>` (`make run` prints the demo tokens)."
        ),
        lifespan=lifespan,
    )
    app.state.frontdesk = state
    # Set by the server when it begins to shut down (orchestrator/server.py): /readyz answers 503
    # and live streams end, so shutdown waits only for ordinary requests.
    app.state.shutting_down = threading.Event()
    errors.install(app, pages=web.error_page)
    app.include_router(tasks.router)
    app.include_router(checkpoints.router)
    app.include_router(catalog.router)
    app.include_router(policies.router)
    app.include_router(budgets.router)
    app.include_router(switches.router)
    app.include_router(users.router)
    app.include_router(cost.router)
    app.include_router(model_calls.router)
    app.include_router(audit.router)
    app.include_router(observability.router(settings))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        """Alive: the process answers. Nothing it depends on is asked (that is /readyz)."""
        return {"status": "ok", "policy_version": state.policy.version[:12]}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready to serve: database at the newest schema, Temporal, the router, policies; 503 names
        each check that failed and why."""
        report = await health.readiness(state, shutting_down=app.state.shutting_down.is_set())
        return JSONResponse(report.body(), status_code=200 if report.ready else 503)

    web.install(app)
    # Inside the body limit, which has buffered the body by the time the NUL check reads it.
    app.add_middleware(RefuseNul, is_page=web.is_page_path, page=web.refused_page)
    app.add_middleware(BodyLimit, limit=settings.max_input_bytes)
    if tracing:
        app.add_middleware(telemetry.RequestSpans)
    return app


def app_from_settings() -> FastAPI:
    """Uvicorn factory: `uvicorn --factory orchestrator.app:app_from_settings`."""
    from orchestrator.settings import get_settings

    return create_app(get_settings())
