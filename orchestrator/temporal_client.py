"""Connecting to Temporal, the same way in the API, the worker and the tests.

`connect_options` turns the settings into the keyword arguments of `Client.connect` (TLS, mTLS,
API key), reading the PEM files it names; a file that cannot be used is reported with the
setting that names it. Nothing here logs the API key or the contents of a key file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from orchestrator import telemetry
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class TemporalConfigError(ValueError):
    """The Temporal connection settings cannot be used; the message names the setting to fix."""


def _pem(setting: str, path: str) -> bytes | None:
    if not path:
        return None
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise TemporalConfigError(f"{setting}: cannot read {path} ({exc.strerror or exc})") from exc
    if b"-----BEGIN " not in data:
        raise TemporalConfigError(f"{setting}: {path} is not a PEM file (no '-----BEGIN ...' block in it)")
    return data


def tls_config(settings: Settings) -> bool | TLSConfig:
    """False (plain), True (TLS with the system's root CAs) or the TLS/mTLS configuration."""
    if not settings.temporal_tls:
        return False
    ca = _pem("FRONTDESK_TEMPORAL_TLS_CA_FILE", settings.temporal_tls_ca_file)
    cert = _pem("FRONTDESK_TEMPORAL_TLS_CERT_FILE", settings.temporal_tls_cert_file)
    key = _pem("FRONTDESK_TEMPORAL_TLS_KEY_FILE", settings.temporal_tls_key_file)
    if (cert is None) != (key is None):  # the settings refuse this too; a hand-built object may not
        raise TemporalConfigError(
            "FRONTDESK_TEMPORAL_TLS_CERT_FILE and FRONTDESK_TEMPORAL_TLS_KEY_FILE go together: set both or neither"
        )
    server_name = settings.temporal_tls_server_name.strip() or None
    if ca is None and cert is None and server_name is None:
        return True
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=server_name)


class TaskTraceInterceptor(Interceptor):
    """Starts a task's workflow under the task's `invoke_workflow` span (telemetry.workflow_root),
    so the workflow, its activities and the router join the trace of the request that submitted it.
    Goes before Temporal's TracingInterceptor, which then parents its StartWorkflow span there."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _TaskTraceOutbound(next)


class _TaskTraceOutbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        task_id = getattr(input.args[0], "task_id", None) if input.args else None
        if not isinstance(task_id, str):
            return await super().start_workflow(input)
        definition = getattr(input.args[0], "definition", None)
        name = f"{definition.name}@{definition.version}" if definition is not None else input.workflow
        token = otel_context.attach(telemetry.workflow_root(task_id, name))
        try:
            return await super().start_workflow(input)
        finally:
            otel_context.detach(token)


def interceptors() -> list[Interceptor]:
    """Client interceptors for this process: with tracing on, the task's root and Temporal's
    OpenTelemetry interceptor (which the client's workers inherit); none with tracing off."""
    tracing = telemetry.tracing_interceptor()
    return [] if tracing is None else [TaskTraceInterceptor(), tracing]


def connect_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `Client.connect` for these settings (reads the PEM files named)."""
    return {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
        "data_converter": pydantic_data_converter,
        "tls": tls_config(settings),
        "api_key": settings.temporal_api_key.get_secret_value() or None,
        "interceptors": interceptors(),
    }


def describe(settings: Settings) -> str:
    """How this process connects, for logs: never the key, only whether there is one."""
    tls = "off"
    if settings.temporal_tls:
        tls = "mTLS" if settings.temporal_tls_cert_file else "on"
    key = "set" if settings.temporal_api_key.get_secret_value() else "none"
    return f"{settings.temporal_address} namespace {settings.temporal_namespace} (TLS {tls}, API key {key})"


async def connect(settings: Settings) -> Client:
    options = connect_options(settings)
    log.info("connecting to Temporal at %s", describe(settings))
    return await Client.connect(**options)
