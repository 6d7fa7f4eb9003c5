"""bench.big at a smoke size, so it cannot rot: it runs on the real stack and PostgreSQL and
produces every figure's keys (timings are printed by the bench, never asserted here); and the
keyset pages it reads (`GET /api/tasks?before=<id>`) hold the same tasks as offset pages."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.db import session_scope
from orchestrator.models import Task, utcnow

REPO = Path(__file__).resolve().parents[2]
BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@BOTH
async def test_keyset_pages_hold_the_same_tasks_as_offset_pages(api_only: Any) -> None:
    gina = api_only.db.user_ids["gina"]
    at = utcnow() - timedelta(days=400)  # older than any other test's tasks in globex
    with session_scope(api_only.db.engine) as session:
        for i, second in enumerate(
            [0, 1, 2, 2, 2, 3, 4]
        ):  # three tasks share a created_at: the id breaks ties
            session.add(Task(tenant_id="globex", requester_id=gina, workflow_name="summary", workflow_version="1",
                             input_text=f"keyset {i}", definition_json="{}",
                             created_at=at + timedelta(seconds=second)))  # fmt: skip
    auth = api_only.auth("gina")
    everything = (await api_only.api.get("/api/tasks?limit=200", headers=auth)).json()
    ids = [t["id"] for t in everything["items"]]
    assert len(ids) == everything["total"] and len(ids) >= 7
    by_offset, by_before, last = [], [], None
    for page in range(0, len(ids), 3):
        r = await api_only.api.get(f"/api/tasks?limit=3&offset={page}", headers=auth)
        by_offset += [t["id"] for t in r.json()["items"]]
        query = "limit=3" + (f"&before={last}" if last else "")
        r = await api_only.api.get(f"/api/tasks?{query}", headers=auth)
        assert r.status_code == 200 and r.json()["total"] == len(ids)
        by_before += [t["id"] for t in r.json()["items"]]
        last = by_before[-1]
    assert by_before == by_offset == ids
    r = await api_only.api.get(f"/api/tasks?before={ids[-1]}", headers=auth)
    assert r.json()["items"] == []
    r = await api_only.api.get("/api/tasks?before=tsk_nosuchtask", headers=auth)
    assert r.status_code == 422, r.text
    # a task of another tenant is unknown here too: ids never leak across tenants
    acme = (await api_only.api.get("/api/tasks?limit=1", headers=api_only.auth("ada"))).json()["items"]
    if acme:
        r = await api_only.api.get(f"/api/tasks?before={acme[0]['id']}", headers=auth)
        assert r.status_code == 422, r.text


def test_bench_big_runs_at_a_small_size_and_prints_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "big.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.big", "--small", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    reads = result["reads"]
    for mode in ("serial", "paced", "saturated"):
        for route in (
            "list first page",
            "list deep page (offset)",
            "list deep page (before)",
            "list by status",
            "detail",
        ):
            assert set(reads[mode][route]) >= {"n", "p50_ms", "p95_ms", "p99_ms"}, (mode, route)
            assert reads[mode][route]["n"] > 0, (mode, route)
        assert reads[mode]["errors"] == 0
    audit = result["audit"]
    assert audit["audit_events"] > 0 and audit["audit_events_per_s"] > 0
    assert audit["chains_ok"], audit["chains"]
    parked = result["parked"]
    assert parked["waiting_at_checkpoint"] == parked["parked"]
    assert parked["all_completed"] and parked["refunds_not_once"] == 0
    assert parked["rss_mb_parked"]["worker"] > 0 and parked["approval_to_completion"]["p50_ms"] is not None
    figures = {row["figure"].split(",")[0].split(" p95")[0] for row in result["rows"]}
    assert {"list first page", "detail"} <= figures
    assert any("audit events/s" in row["figure"] for row in result["rows"])
    assert any("parked at a checkpoint: worker RSS" in row["figure"] for row in result["rows"])
    assert "| figure | value | target | verdict |" in done.stdout
