"""Readiness: can this API process serve? (`/readyz`; `/healthz` only says it is alive.)

Four checks run at once, each under its own timeout, so the answer comes within about
:data:`CHECK_TIMEOUT_SECONDS` even when a dependency hangs:

    database   answers `SELECT 1` and its schema is at this release's newest migration, or newer
               (a later release migrated it first); behind or empty is not ready
    temporal   the namespace can be described
    router     `GET /v1/models` with the router key answers 200
    policies   loaded, with their version

Each failure says what is wrong and what to do, in words for the operator reading the load
balancer's log. Nothing here logs or returns a secret: the router key goes only into the request
header, the database URL is shown without its password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.db import schema_state
from orchestrator.services.state import AppState
from orchestrator.temporal_client import TemporalConfigError

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2.5


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    extra: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **(self.extra or {})}


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def body(self) -> dict[str, Any]:
        failed = [name for name, c in self.checks.items() if not c.ok]
        return {
            "status": "ready" if not failed else "not ready",
            "failed": failed,
            "checks": {name: c.body() for name, c in self.checks.items()},
        }


def _why(exc: BaseException) -> str:
    """The exception's class and first line, short (drivers put the host in it, never a password)."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def check_database(state: AppState) -> Check:
    where = state.engine.url.render_as_string(hide_password=True)
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            schema = schema_state(conn)
    except Exception as exc:
        return Check(False, f"database {where} does not answer ({_why(exc)}); check that it is up and reachable")
    if schema.empty:
        return Check(False, f"database {where} has no Frontdesk schema; run `frontdesk migrate`")
    if schema.newer:
        # A later release migrated it: this process keeps serving until it is replaced (upgrades
        # migrate first, then roll the processes), so the balancer does not drop every replica.
        return Check(True, f"answers; schema at revision {schema.describe()}, newer than this release")
    if schema.behind:
        need = ", ".join(sorted(schema.heads))
        return Check(
            False,
            f"database schema is at revision {schema.describe()}, this code needs {need}; run `frontdesk migrate` "
            "(or roll back to the code that matches)",
        )
    return Check(True, f"answers; schema at revision {schema.describe()}")


async def check_temporal(state: AppState, within: float) -> Check:
    settings = state.settings
    where = f"Temporal at {settings.temporal_address}"
    try:
        client = await state.temporal_client()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace),
            retry=False,
            timeout=timedelta(seconds=within),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Check(
                False,
                f"{where} has no namespace {settings.temporal_namespace!r}; create it or fix "
                "FRONTDESK_TEMPORAL_NAMESPACE",
            )
        if exc.status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
            return Check(
                False,
                f"{where} refused this client ({exc.status.name}); check FRONTDESK_TEMPORAL_API_KEY or "
                "the mTLS certificate",
            )
        return Check(False, f"{where} does not answer ({exc.status.name}: {exc.message[:200]})")
    except Exception as exc:
        if isinstance(exc.__cause__, TemporalConfigError):  # a TLS file that cannot be used: its setting
            return Check(False, str(exc.__cause__))
        cause = exc.__cause__ or exc  # AppState wraps a failed connect in ServiceUnavailable
        return Check(False, f"{where} is not reachable ({_why(cause)}); check that it is up and the TLS settings")
    return Check(True, f"namespace {settings.temporal_namespace!r} answers", {"address": settings.temporal_address})


async def check_router(state: AppState, within: float) -> Check:
    settings = state.settings
    url = settings.router_url.rstrip("/") + "/v1/models"
    try:
        async with httpx.AsyncClient(timeout=within, trust_env=False) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {settings.router_api_key}"})
    except httpx.TimeoutException:
        return Check(False, f"router at {settings.router_url} did not answer within {within:g} s")
    except httpx.HTTPError as exc:
        return Check(
            False, f"router at {settings.router_url} is not reachable ({type(exc).__name__}); is it running?"
        )
    if response.status_code == 200:
        return Check(True, "answers GET /v1/models", {"url": settings.router_url})
    said = f"HTTP {response.status_code}: {_router_message(response, settings.router_api_key)}"
    if response.status_code in (400, 401, 403):  # LiteLLM answers 400 to a key it cannot look up
        return Check(
            False,
            f"router at {settings.router_url} refused GET /v1/models ({said}); check FRONTDESK_ROUTER_API_KEY",
        )
    return Check(False, f"router at {settings.router_url} answered GET /v1/models with {said}")


def _router_message(response: httpx.Response, key: str) -> str:
    """The router's own error message, short, with the key blanked should it be echoed back."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        message = str(error.get("message") if isinstance(error, dict) else error or body)
    except ValueError:
        message = response.text
    message = (message.strip().splitlines() or [""])[0][:200]
    return message.replace(key, "***") if key else message


def check_policies(state: AppState) -> Check:
    version = state.policy.view().version  # view() also picks up edited files
    return Check(True, f"loaded, version {version[:12]}", {"version": version})


async def _bounded(name: str, run: Callable[[], Awaitable[Check]], within: float) -> Check:
    try:
        return await asyncio.wait_for(run(), within)
    except TimeoutError:
        return Check(False, f"{name} check did not finish within {within:g} s; the {name} is slow or hanging")
    except Exception as exc:  # a check that breaks is a failed check, never a 500
        log.warning("readiness check %s failed unexpectedly: %s", name, type(exc).__name__)
        return Check(False, f"{name} check failed: {_why(exc)}")


async def readiness(
    state: AppState, *, within: float = CHECK_TIMEOUT_SECONDS, shutting_down: bool = False
) -> Readiness:
    """Run every check at once, each bounded by `within` seconds."""
    inner = max(within - 0.3, 0.1)  # the checks' own timeouts end first, with a clearer message
    runs: dict[str, Callable[[], Awaitable[Check]]] = {
        "database": lambda: asyncio.to_thread(check_database, state),
        "temporal": lambda: check_temporal(state, inner),
        "router": lambda: check_router(state, inner),
        "policies": lambda: asyncio.to_thread(check_policies, state),
    }
    results = await asyncio.gather(*(_bounded(name, run, within) for name, run in runs.items()))
    checks = dict(zip(runs, results, strict=True))
    if shutting_down:
        checks["server"] = Check(False, "this API process is shutting down; send requests to another replica")
    return Readiness(checks)
