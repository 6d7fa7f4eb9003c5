"""Secrets stay where they belong (issue 13, part 6).

Marker values go into a person's password (and a wrong one typed at sign-in), a real API token, a
forged one, the router key and a tool's output. Then a refund runs through the real stack (API,
Temporal, worker, LiteLLM, demo model) with tracing and metrics on, and every place the product
writes to is searched: the logs of the API and the worker (they run in this process), the spans
and metrics they export, every row of every table, the audit trail, the error bodies people got
back, and the task's evidence bundle.

- The password, the wrong password, both tokens, the router key and the audit anchor keys (the HMAC
  key and the Ed25519 private key; the chain is anchored before the bundle is read, so the bundle
  carries the signed anchor) appear nowhere, the anchor file included (passwords and tokens are
  stored as hashes; the keys live in the settings and the key file only).
- The tool's output is stored where the product keeps results (the order it came from, the tool
  call's result, the model's answers and the task's output that quote it) and nowhere else: not in
  logs, spans (content capture is off), metrics, audit rows, error bodies or the evidence bundle
  (which carries its digest).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROUTER_KEY, SeededDb, Stack, running_stack
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import select
from sqlmodel import SQLModel
from temporalio.testing import WorkflowEnvironment
from webui.conftest import CSRF

from orchestrator import anchor_keys, audit_anchor, metrics, telemetry
from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.services import accounts

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
METRICS_TOKEN = "metrics-" + secrets.token_hex(12)
ANCHOR_KEY = "anchor-" + secrets.token_hex(12)

# Where a tool's output is meant to be kept: its source, the tool call's result, and what quotes
# it on purpose (the model's recorded answers, the task's output).
TOOL_OUTPUT_HOMES = {
    ("demo_order", "customer"),
    ("tool_call", "result_json"),
    ("model_call", "response_json"),
    ("task", "output_json"),
}


class Collected(SpanExporter):
    """Every span exported, kept for the search."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def text(self) -> str:
        return "\n".join(
            json.dumps(
                {
                    "name": s.name,
                    "attributes": dict(s.attributes or {}),
                    "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in s.events],
                    "status": str(s.status.description),
                },
                default=str,
            )
            for s in self.spans
        )


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[Collected]:
    collected = Collected()
    yield collected
    telemetry.shutdown()
    metrics.shutdown()


@pytest.fixture
async def observed(
    db: SeededDb,
    temporal_env: WorkflowEnvironment,
    router_url: str,
    demo_model_url: str,
    tmp_path: Path,
    exported: Collected,
) -> AsyncIterator[Stack]:
    signing_key = tmp_path / "anchor-signing.pem"
    anchor_keys.write_private_key(signing_key)
    async with running_stack(
        db, temporal_env.client, router_url, demo_model_url, tmp_path, metrics_token=METRICS_TOKEN,
        audit_anchor_file=str(tmp_path / "anchors.jsonl"), audit_anchor_key=ANCHOR_KEY,
        audit_anchor_signing_key_file=str(signing_key), audit_anchor_interval_seconds=0,
    ) as stack:  # fmt: skip
        telemetry.configure(stack.settings, "api", exporter=exported)
        metrics.configure(stack.settings, "api", prometheus=True)
        yield stack


def table_text(engine: Any) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) of every non-empty value in the database, as text."""
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is not None and value != "":
                        yield table.name, column, str(value)


@BOTH
async def test_secrets_appear_only_where_they_are_meant_to_be_stored(
    observed: Stack, exported: Collected, caplog: pytest.LogCaptureFixture
) -> None:
    stack = observed
    # INFO, the level Frontdesk's processes log at (cli/main.py; there is no setting for less).
    # At DEBUG the Temporal SDK would log every activity's payloads, tool outputs included.
    caplog.set_level(logging.INFO)
    mark = secrets.token_hex(6)
    password = f"Pw-{mark}-canary-1"
    wrong = f"Wrong-{mark}-canary-2"
    forged = f"fd_{mark}canary3"
    customer = f"Customer {mark} canary4"
    token = stack.db.tokens["riley"]
    where = audit_anchor.configured(stack.settings)
    assert where is not None and where[1].signer is not None
    private = where[1].signer.private_bytes_raw()
    pem = Path(stack.settings.audit_anchor_signing_key_file).read_text().splitlines()[1]
    never_stored = {"password": password, "wrong password": wrong, "forged token": forged,
                    "API token": token, "router key": ROUTER_KEY, "metrics token": METRICS_TOKEN,
                    "anchor key": ANCHOR_KEY, "anchor signing key (PEM)": pem,
                    "anchor signing key (hex)": private.hex(),
                    "anchor signing key (base64)": base64.b64encode(private).decode()[:40]}  # fmt: skip
    bodies: list[str] = []

    # A person with a password; they sign in with it, and once with a wrong one.
    email = f"canary-{mark}@acme.example"
    with session_scope(stack.db.engine) as session:
        accounts.add_user(session, "test", "acme", email, ["requester"], name="Canary", password=password)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url="https://frontdesk") as web:
        for attempt in (wrong, password):
            form = await web.get("/login")
            csrf = CSRF.search(form.text)
            assert csrf
            r = await web.post("/login", data={"email": email, "password": attempt, "csrf_token": csrf.group(1)})
            bodies.append(r.text)
            assert r.status_code == (303 if attempt == password else 401), r.status_code
        bodies.append((await web.get("/account")).text)

    # A forged token, a bad request with the real one, and a refund whose tool output carries a marker.
    r = await stack.api.get("/api/tasks", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    bodies.append(r.text)
    r = await stack.api.post("/api/tasks", json={"input": 7}, headers=stack.auth("riley"))
    assert r.status_code == 422
    bodies.append(r.text)
    order = stack.make_order("300")
    with session_scope(stack.db.engine) as session:
        row = session.get(DemoOrder, order)
        assert row is not None
        row.customer = customer
        session.add(row)
    task = await stack.submit(f"Refund 300 EUR on order {order}, the item was damaged.", who="riley")
    cp = await stack.open_checkpoint(task["id"])
    r = await stack.api.post(f"/api/checkpoints/{cp['id']}/decision", json={"decision": "approve"},
                             headers=stack.auth("avery"))  # fmt: skip
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    assert Decimal(done["cost"]["total_usd"]) > 0

    assert [r.written for r in audit_anchor.Anchorer(stack.db.engine, *where).run("acme")] == [True]
    evidence = await stack.api.get(f"/api/tasks/{task['id']}/evidence", headers=stack.auth("ada"))
    assert evidence.status_code == 200, evidence.text
    assert evidence.json()["audit"]["anchor"]["ed25519_sig"], "the bundle is not anchored"
    telemetry.flush()
    metrics.flush()
    scraped = await stack.api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200, scraped.text[:300]

    with session_scope(stack.db.engine) as session:
        tool_rows = [t for t in table_text(stack.db.engine) if t[0] == "tool_call" and customer in t[2]]
    assert tool_rows, "the tool's output was not stored with its call"
    audit_rows = [v for t, _, v in table_text(stack.db.engine) if t == "audit_event"]
    places = {
        "logs": caplog.text,
        "spans": exported.text(),
        "metrics": scraped.text,
        "audit rows": "\n".join(audit_rows),
        "error bodies": "\n".join(bodies),
        "evidence bundle": evidence.text,
        "anchor file": Path(where[0]).read_text(),
    }
    assert exported.spans, "no span was exported: the search would prove nothing"
    assert "gen_ai" in scraped.text, "no GenAI metric was exported: the search would prove nothing"
    for what, marker in {**never_stored, "tool output": customer}.items():
        for place, text in places.items():
            assert marker not in text, f"the {what} appears in the {place}"
    stored = {(t, c) for t, c, v in table_text(stack.db.engine) for m in never_stored.values() if m in v}
    assert stored == set(), f"stored in clear: {stored}"
    homes = {(t, c) for t, c, v in table_text(stack.db.engine) if customer in v}
    assert ("tool_call", "result_json") in homes and homes <= TOOL_OUTPUT_HOMES, homes
