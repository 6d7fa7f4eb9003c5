"""Replay committed histories against today's workflow code: a change that would break a task in
flight (non-determinism) fails here. Re-record with `make replay-record` only for intended changes,
and then keep the old files too while tasks started on the old code may still be running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.workflows.task import TaskWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
EXPECTED = {
    "refund_approved",
    "refund_rejected",
    "summary",
    "router_failed",
    "cancelled_at_checkpoint",
    "approved_with_edits",
    "two_approvers",
    "budget_raised",
    "paused_by_switch",
    "refund_email",
    "research_brief",
    "triage_escalated",
    "contract_rejected",
}


def test_every_workflow_path_has_a_committed_history() -> None:
    assert EXPECTED <= {p.stem for p in HISTORIES}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    result = await Replayer(workflows=[TaskWorkflow], data_converter=pydantic_data_converter).replay_workflow(
        history, raise_on_replay_failure=True
    )
    assert result.replay_failure is None
