"""The one settings object. Nothing else in Frontdesk reads the environment.

Every setting can be given as an environment variable prefixed ``FRONTDESK_`` (for example
``FRONTDESK_DATABASE_URL``) or in a ``.env`` file in the working directory. The README has the
table of all of them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.resources import DEFAULT_POLICIES_DIR

PLACEHOLDER_SECRETS = {"", "changeme", "sk-1234", "frontdesk-dev-router-key", "dev-secret"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRONTDESK_", env_file=".env", extra="ignore")

    environment: str = Field(
        "development", description="`development` or `production`; production refuses placeholder secrets."
    )
    state_dir: Path = Field(
        default_factory=lambda: Path.cwd() / ".frontdesk",
        description="Where the dev stack keeps its files (SQLite, Temporal, logs, the LiteLLM venv); "
        "default `./.frontdesk` in the folder it starts from.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means a SQLite file in the state dir. PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )

    temporal_address: str = Field("127.0.0.1:7233", description="Temporal frontend address.")
    temporal_namespace: str = Field("default", description="Temporal namespace.")
    task_queue: str = Field("frontdesk-tasks", description="Temporal task queue the worker polls.")
    temporal_tls: bool = Field(
        False,
        description="Connect to Temporal over TLS (system root CAs unless a CA file is given). Required "
        "with an API key in production; Temporal Cloud and most clusters need it.",
    )
    temporal_tls_ca_file: str = Field(
        "", description="PEM file of the CA that signed Temporal's server certificate; empty: system roots."
    )
    temporal_tls_cert_file: str = Field(
        "", description="PEM client certificate for mTLS; goes with FRONTDESK_TEMPORAL_TLS_KEY_FILE."
    )
    temporal_tls_key_file: str = Field(
        "", description="PEM private key of the mTLS client certificate; goes with FRONTDESK_TEMPORAL_TLS_CERT_FILE."
    )
    temporal_tls_server_name: str = Field(
        "",
        description="Server name for SNI and certificate verification when it differs from the host in "
        "FRONTDESK_TEMPORAL_ADDRESS; empty: that host.",
    )
    temporal_api_key: SecretStr = Field(
        SecretStr(""),
        description="API key for Temporal (Temporal Cloud), sent as a bearer token; never logged. It does "
        "not switch TLS on by itself: set FRONTDESK_TEMPORAL_TLS too (production refuses a key without TLS).",
    )
    worker_build_id: str = Field(
        "",
        max_length=255,
        description="Build id of this worker (the image tag or git sha), so a rollout can be told apart: "
        "the worker joins the Temporal worker deployment named after the task queue as this build, with "
        "versioning-based routing off. The id is recorded on every workflow task it completes and shown "
        "with its pollers; tasks still go to any worker on the queue (no `temporal worker deployment "
        "set-current-version` step). Empty: the SDK's checksum of the loaded code.",
    )
    worker_max_cached_workflows: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Workflows the worker keeps in memory between their workflow tasks (Temporal's sticky "
        "cache, about 0.3 MB each for a parked refund task). A decision for a workflow that is not "
        "kept replays its history first: fewer cost less memory and more CPU per decision "
        "(docs/performance-scale.md).",
    )
    worker_shutdown_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM/SIGINT the worker stops polling at once and gives the activities it is "
        "running this long to finish before cancelling them.",
    )

    router_url: str = Field(
        "http://127.0.0.1:4011", description="Base URL of the OpenAI-compatible LLM router (LiteLLM proxy)."
    )
    router_api_key: str = Field(
        "frontdesk-dev-router-key",
        description="Bearer key for the router (the LiteLLM master key in the dev stack).",
    )
    router_max_requests: int = Field(
        3,
        ge=1,
        le=10,
        description="At most this many HTTP requests per logical model call that may have reached "
        "a provider (5xx answers and timeouts after sending included; refused connections and 429s "
        "are not counted).",
    )
    router_timeout_seconds: float = Field(
        60.0, gt=0, description="Timeout of one HTTP request to the router."
    )
    router_backoff_seconds: float = Field(
        0.5, ge=0, description="First retry delay; doubles per retry, up to 15 s."
    )
    router_outage_max_seconds: float = Field(
        600.0,
        ge=0,
        le=1500,
        description="How long a model call waits out an unreachable router (connection refused, "
        "timeouts, 429, 5xx) before its step fails; the task shows it is waiting meanwhile. At most "
        "1500: the model-call activity's 30-minute timeout must also cover the last request.",
    )

    infra_outage_max_seconds: float = Field(
        900.0,
        ge=0,
        le=86400,
        description="How long an activity waits out an unreachable database (connection refused or "
        "cut, server shutting down) before its task fails; retried with backoff up to 10 s apart. "
        "Refused data (constraint violations, invalid values) fails at once.",
    )
    decision_wait_seconds: float = Field(
        20.0,
        gt=0,
        le=600,
        description="How long a checkpoint decision or reassignment request waits for the workflow to "
        "record it; an accepted one still unrecorded then (the database is down) answers 202, one "
        "the workflow has not taken answers 503 with Retry-After.",
    )

    api_host: str = Field("127.0.0.1", description="Bind address of the API + UI.")
    api_port: int = Field(8000, description="Port of the API + UI.")
    api_shutdown_grace_seconds: int = Field(
        30,
        ge=0,
        description="On SIGTERM/SIGINT the API stops accepting connections and gives requests in flight "
        "this long to finish (live timeline streams end at once; browsers reconnect elsewhere).",
    )
    max_input_bytes: int = Field(
        65536, description="Largest accepted request body for task submission, in bytes."
    )

    demo_model_port: int = Field(18001, description="Port of the offline demo model (dev stack).")
    router_port: int = Field(4011, description="Port of the LiteLLM proxy started by the dev stack.")
    temporal_port: int = Field(7233, description="Port of the Temporal dev server started by the dev stack.")
    temporal_ui_port: int = Field(8233, description="Port of the Temporal web UI started by the dev stack.")
    litellm_venv: Path | None = Field(
        None,
        description="Virtualenv holding the LiteLLM proxy of the dev stack; default `<state_dir>/litellm-venv` "
        "(`frontdesk dev` installs it there on first run).",
    )

    policies_dir: Path = Field(
        DEFAULT_POLICIES_DIR,
        description="Folder with casbin models, policies, approvals, budgets and the price table; default: "
        "the ones shipped in the package (`frontdesk policy init DIR` copies them to edit).",
    )
    catalog_packages: list[str] = Field(
        [],
        description="Catalog packages (import paths) and YAML workflow files or folders that the API "
        "and the workers load; empty: no workflow is registered. The dev stack loads "
        '`["orchestrator.demo.catalog"]` unless this is set.',
    )
    catalog_settings: dict[str, dict[str, Any]] = Field(
        {},
        description="Each catalog package's own settings, keyed by package, e.g. "
        '`{"orchestrator.demo.catalog": {"tool_delay_seconds": 2}}`; the worker validates them '
        "against the model the package declares (`settings_model`) when it loads the catalog.",
    )
    intake_threshold: float = Field(
        0.55, ge=0, le=1, description="Intake picks a workflow on its own only at or above this confidence."
    )
    intake_planner_workflow: str = Field(
        "", description="Workflow (name or name@version) that takes requests intake cannot place; empty: ask."
    )
    otel_console: bool = Field(
        False, description="Print spans to the console (switches tracing on, like an OTLP endpoint does)."
    )
    otel_exporter_otlp_endpoint: str = Field(
        "",
        description="Base URL of an OTLP/HTTP (protobuf) collector, e.g. `http://127.0.0.1:4318`: traces go "
        "to `/v1/traces`, metrics to `/v1/metrics`. Empty: no export, no tracing (docs/observability.md).",
    )
    otel_exporter_otlp_headers: SecretStr = Field(
        SecretStr(""),
        description="Headers sent with every OTLP export, `key=value,key=value`, values percent-encoded (a "
        "collector's API key); never logged.",
    )
    otel_service_name: str = Field(
        "frontdesk", description="`service.name` of the exported spans and metrics (each process adds "
        "`frontdesk.process`: `api` or `worker`)."
    )
    otel_metric_export_interval_seconds: float = Field(
        15.0, gt=0, description="How often metrics are pushed to the OTLP endpoint."
    )
    otel_capture_content: bool = Field(
        False,
        description="Record prompts and completions on `chat` spans (`gen_ai.input.messages`, "
        "`gen_ai.output.messages`). Off: spans carry names, sizes, tokens and cost, never message text.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve the API's Prometheus `/metrics` to anyone who can reach it (a scraper on a private "
        "network). Off: `/metrics` needs FRONTDESK_METRICS_TOKEN, or answers 404 without one.",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token a scraper sends to read `/metrics` (`Authorization: Bearer <token>`); never logged.",
    )

    switch_cache_seconds: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="How long a process may answer kill-switch checks from memory; "
        "a flip applies to the next decision within this (under 1 s).",
    )
    notify_webhook_url: str = Field(
        "",
        description="Where the notifier POSTs signed JSON notifications (checkpoint opened, escalated…); "
        "empty means notifications are only logged.",
    )
    notify_webhook_secret: str = Field(
        "",
        description="HMAC-SHA256 key for the `X-Frontdesk-Signature` header; required with a webhook URL.",
    )
    notify_poll_seconds: float = Field(
        1.0, gt=0, description="How often the notification dispatcher looks for pending notifications."
    )
    notify_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts (with doubling backoff from 5 s) before a notification fails."
    )

    audit_anchor_file: str = Field(
        "",
        description="Append-only JSON Lines file (another disk or a WORM mount, not the database's) that "
        "receives signed records of each tenant's audit chain head, so `frontdesk audit verify` detects "
        "deleted or rewritten rows, the newest included; empty: no anchoring (docs/audit.md).",
    )
    audit_anchor_key: SecretStr = Field(
        SecretStr(""),
        description="HMAC-SHA256 key that signs the anchor records (required with an anchor file); never "
        "logged. Keep it away from the database's credentials.",
    )
    audit_anchor_signing_key_file: str = Field(
        "",
        description="PEM file of an Ed25519 private key (`frontdesk audit keygen --out FILE`) that also "
        "signs each anchor, so anyone with its public key (`frontdesk audit public-key`) can check "
        "anchors and evidence bundles without a secret; empty: HMAC only. Mode 0600; never logged.",
    )
    audit_anchor_interval_seconds: float = Field(
        300.0,
        ge=0,
        description="How often the API process anchors the heads that moved (0: only `frontdesk audit anchor`).",
    )

    @model_validator(mode="after")
    def _anchor_needs_a_key(self) -> Settings:
        key = self.audit_anchor_key.get_secret_value()
        if self.audit_anchor_file and len(key) < 16 and (key or not self.audit_anchor_signing_key_file):
            raise ValueError(
                "FRONTDESK_AUDIT_ANCHOR_FILE is set but FRONTDESK_AUDIT_ANCHOR_KEY is missing or shorter "
                "than 16 characters (it may be empty only with FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE): "
                "the anchors would be unsigned"
            )
        if self.environment == "production" and self.audit_anchor_file and key and key in PLACEHOLDER_SECRETS:
            raise ValueError("FRONTDESK_AUDIT_ANCHOR_KEY is a placeholder; set a real key in production")
        if self.environment == "production" and self.audit_anchor_signing_key_file:
            from orchestrator.anchor_keys import load_private_key

            try:  # refused at start, not at the first anchoring run
                load_private_key(self.audit_anchor_signing_key_file)
            except ValueError as exc:
                raise ValueError(f"FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> Settings:
        if self.environment == "production" and self.router_api_key in PLACEHOLDER_SECRETS:
            raise ValueError("FRONTDESK_ROUTER_API_KEY is a placeholder; set a real router key in production")
        token = self.metrics_token.get_secret_value()
        if self.environment == "production" and token and (token in PLACEHOLDER_SECRETS or len(token) < 16):
            raise ValueError("FRONTDESK_METRICS_TOKEN is a placeholder or shorter than 16 characters")
        return self

    @model_validator(mode="after")
    def _refuse_contradicting_temporal_tls(self) -> Settings:
        """TLS settings that cannot be what was meant. Messages name settings, never the key."""
        if bool(self.temporal_tls_cert_file) != bool(self.temporal_tls_key_file):
            raise ValueError(
                "FRONTDESK_TEMPORAL_TLS_CERT_FILE and FRONTDESK_TEMPORAL_TLS_KEY_FILE go together "
                "(mTLS needs the certificate and its key): set both or neither"
            )
        if not self.temporal_tls:
            given = [
                f"FRONTDESK_TEMPORAL_TLS_{name.upper()}"
                for name, value in [
                    ("ca_file", self.temporal_tls_ca_file),
                    ("cert_file", self.temporal_tls_cert_file),
                    ("key_file", self.temporal_tls_key_file),
                    ("server_name", self.temporal_tls_server_name),
                ]
                if value
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but FRONTDESK_TEMPORAL_TLS is off: set FRONTDESK_TEMPORAL_TLS=true "
                    "(or remove them)"
                )
        key = self.temporal_api_key.get_secret_value()
        if self.environment == "production" and key:
            if key.strip() != key or key in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "FRONTDESK_TEMPORAL_API_KEY is a placeholder or has surrounding spaces; set the real key"
                )
            if not self.temporal_tls:
                raise ValueError(
                    "FRONTDESK_TEMPORAL_API_KEY is set but FRONTDESK_TEMPORAL_TLS is off: the key would cross "
                    "the network in clear text; set FRONTDESK_TEMPORAL_TLS=true"
                )
        return self

    @property
    def router_venv(self) -> Path:
        return self.litellm_venv or self.state_dir / "litellm-venv"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'frontdesk.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
