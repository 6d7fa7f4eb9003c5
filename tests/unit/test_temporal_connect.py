"""Settings -> `Client.connect` keyword arguments (TLS, mTLS, API key) and -> Worker options (build id,
shutdown grace). No TLS server is needed: the mapping is a function of the settings and the files."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from orchestrator.demo.devstack.processes import free_port
from orchestrator.settings import Settings
from orchestrator.temporal_client import TemporalConfigError, connect, connect_options, describe
from workers.worker import worker_options

PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEsecretkeymaterial\n-----END PRIVATE KEY-----\n"
SECRET = "tmprl-secret-api-key-0123456789"


def pem(tmp_path: Path, name: str, data: bytes = PEM) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_defaults_are_plain_and_keyless() -> None:
    options = connect_options(Settings(temporal_address="temporal:7233", temporal_namespace="prod"))
    assert options["target_host"] == "temporal:7233" and options["namespace"] == "prod"
    assert options["tls"] is False  # explicit: the SDK would otherwise decide from the key
    assert options["api_key"] is None
    assert options["data_converter"] is not None


def test_tls_alone_uses_the_system_roots() -> None:
    assert connect_options(Settings(temporal_tls=True))["tls"] is True


def test_ca_and_server_name(tmp_path: Path) -> None:
    s = Settings(
        temporal_tls=True,
        temporal_tls_ca_file=pem(tmp_path, "ca.pem"),
        temporal_tls_server_name="temporal.internal.example",
    )
    tls = connect_options(s)["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == PEM
    assert tls.domain == "temporal.internal.example"
    assert tls.client_cert is None and tls.client_private_key is None


def test_mtls_reads_certificate_and_key(tmp_path: Path) -> None:
    s = Settings(
        temporal_tls=True,
        temporal_tls_cert_file=pem(tmp_path, "client.pem"),
        temporal_tls_key_file=pem(tmp_path, "client.key", KEY),
    )
    tls = connect_options(s)["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == PEM and tls.client_private_key == KEY
    assert tls.server_root_ca_cert is None and tls.domain is None
    assert "mTLS" in describe(s)


def test_api_key_is_passed_and_never_shown() -> None:
    s = Settings(temporal_tls=True, temporal_api_key=SECRET)
    options = connect_options(s)
    assert options["api_key"] == SECRET and options["tls"] is True
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    assert SECRET not in describe(s) and "API key set" in describe(s)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_TEMPORAL_API_KEY", SECRET)
    monkeypatch.setenv("FRONTDESK_TEMPORAL_TLS", "true")
    monkeypatch.setenv("FRONTDESK_TEMPORAL_TLS_CA_FILE", "")  # empty means unset, not "."
    options = connect_options(Settings())
    assert options["api_key"] == SECRET and options["tls"] is True


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("FRONTDESK_TEMPORAL_TLS_CA_FILE", "temporal_tls_ca_file"),
        ("FRONTDESK_TEMPORAL_TLS_CERT_FILE", "temporal_tls_cert_file"),
        ("FRONTDESK_TEMPORAL_TLS_KEY_FILE", "temporal_tls_key_file"),
    ],
)
def test_a_missing_file_names_its_setting(tmp_path: Path, setting: str, field: str) -> None:
    values = {
        "temporal_tls": True,
        "temporal_tls_cert_file": pem(tmp_path, "client.pem"),
        "temporal_tls_key_file": pem(tmp_path, "client.key", KEY),
        field: str(tmp_path / "nowhere.pem"),
    }
    with pytest.raises(TemporalConfigError) as caught:
        connect_options(Settings(**values))
    message = str(caught.value)
    assert message.startswith(f"{setting}: cannot read ") and "nowhere.pem" in message


def test_a_file_that_is_not_pem_names_its_setting_and_not_its_content(tmp_path: Path) -> None:
    s = Settings(
        temporal_tls=True,
        temporal_tls_cert_file=pem(tmp_path, "client.pem"),
        temporal_tls_key_file=pem(tmp_path, "client.key", b"hunter2-raw-key-bytes"),
    )
    with pytest.raises(TemporalConfigError) as caught:
        connect_options(s)
    assert str(caught.value).startswith("FRONTDESK_TEMPORAL_TLS_KEY_FILE: ") and "not a PEM file" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("given", ["temporal_tls_cert_file", "temporal_tls_key_file"])
def test_certificate_and_key_go_together(given: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(temporal_tls=True, **{given: "/etc/frontdesk/client.pem"})
    assert "FRONTDESK_TEMPORAL_TLS_CERT_FILE and FRONTDESK_TEMPORAL_TLS_KEY_FILE go together" in str(caught.value)


def test_tls_files_without_tls_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(temporal_tls_ca_file="/etc/ca.pem", temporal_tls_server_name="t.example")
    text = str(caught.value)
    assert "FRONTDESK_TEMPORAL_TLS_CA_FILE, FRONTDESK_TEMPORAL_TLS_SERVER_NAME set but" in text
    assert "FRONTDESK_TEMPORAL_TLS=true" in text


def production(**values: object) -> Settings:
    return Settings(environment="production", router_api_key="a-real-router-key", **values)  # type: ignore[arg-type]  # test helper passes settings through


def test_production_refuses_an_api_key_without_tls() -> None:
    with pytest.raises(ValidationError) as caught:
        production(temporal_api_key=SECRET)
    assert "FRONTDESK_TEMPORAL_API_KEY is set but FRONTDESK_TEMPORAL_TLS is off" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("key", ["changeme", " padded-key "])
def test_production_refuses_a_placeholder_api_key(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        production(temporal_tls=True, temporal_api_key=key)
    assert "FRONTDESK_TEMPORAL_API_KEY is a placeholder" in str(caught.value)


def test_production_accepts_key_with_tls_and_development_allows_a_plain_key() -> None:
    assert connect_options(production(temporal_tls=True, temporal_api_key=SECRET))["api_key"] == SECRET
    # A local proxy in development may take a key over plain TLS-less gRPC; that is the operator's call.
    assert connect_options(Settings(temporal_api_key=SECRET))["tls"] is False


async def test_a_failed_connect_shows_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings(temporal_address=f"127.0.0.1:{free_port()}", temporal_tls=True, temporal_api_key=SECRET)
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as caught:
        await connect(s)
    assert "connecting to Temporal at 127.0.0.1" in caplog.text and "API key set" in caplog.text
    assert SECRET not in caplog.text and SECRET not in str(caught.value)


def test_worker_options_without_a_build_id() -> None:
    options = worker_options(Settings(worker_shutdown_grace_seconds=12))
    assert options == {"graceful_shutdown_timeout": timedelta(seconds=12), "max_cached_workflows": 1000}
    assert worker_options(Settings(worker_max_cached_workflows=250))["max_cached_workflows"] == 250


def test_worker_options_with_a_build_id() -> None:
    options = worker_options(Settings(task_queue="fd-prod", worker_build_id="2024.06.1-abc123"))
    config = options["deployment_config"]
    assert config.version.deployment_name == "fd-prod" and config.version.build_id == "2024.06.1-abc123"
    assert config.use_worker_versioning is False  # identify the build; do not route by it
    assert options["graceful_shutdown_timeout"] == timedelta(seconds=30)
