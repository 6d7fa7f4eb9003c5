"""An escalation ladder with a judge: refused on every rung, the answer goes to a person."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Stack, running_stack

TEXT = "The pilot cut handling time by a fifth. Staff liked the new screens. Rollout starts in May."


@pytest.fixture
async def judged(
    db: Any, temporal_env: Any, router_url: str, demo_model_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    packages = ["orchestrator.demo.catalog", "judge_catalog"]
    async with running_stack(
        db, temporal_env.client, router_url, demo_model_url, tmp_path, catalog_packages=packages
    ) as stack:
        yield stack


async def script(demo_scripts: Any, *verdicts: bool) -> str:
    key = f"[script:{secrets.token_hex(4)}]"
    steps: list[dict[str, Any]] = []
    for ok in verdicts:  # each rung: the summary (default behaviour), then the judge's verdict
        steps += [
            {"default": True},
            {"content": json.dumps({"approve": ok, "reason": "ok" if ok else "too vague"})},
        ]
    r = await demo_scripts.post("/_demo/scripts", json={"key": key, "responses": steps})
    assert r.status_code in (200, 201)
    return key


async def test_judge_accepts_the_second_rung(judged: Stack, demo_scripts: Any) -> None:
    key = await script(demo_scripts, False, True)
    task = await judged.submit(f"{TEXT} {key}", workflow="judged_summary")
    done = await judged.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed" and done["outcome"] == "resolved"
    summarise = next(s for s in done["steps"] if s["name"] == "summarise")
    assert (summarise["rung"], summarise["tier"]) == (2, "tier-frontier")
    assert [c["tier"] for c in done["model_calls"]] == ["tier-slm", "tier-open", "tier-frontier", "tier-open"]


async def test_judge_refuses_every_rung_and_a_person_decides(judged: Stack, demo_scripts: Any) -> None:
    key = await script(demo_scripts, False, False)
    task = await judged.submit(f"{TEXT} {key}", workflow="judged_summary")
    view = await judged.wait(task["id"], {"waiting"})
    [cp] = view["checkpoints"]
    assert cp["kind"] == "output_review" and "too vague" in cp["reason"]
    assert (await judged.decide(cp["id"], "approve")).status_code == 200
    done = await judged.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed" and done["outcome"] == "escalated"
    assert len(done["model_calls"]) == 4  # both rungs and both verdicts are paid for
