"""A checkpoint changes in workflow memory only once its record is written.

When recording a decision or a reassignment fails, the workflow must keep what the database and
the inbox show; otherwise the approver the inbox names is refused and the task waits for good.
And no database text of such a failure reaches the person who sent the decision.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from orchestrator.contracts import ApprovalSpec, CheckpointState, DecisionRequest, ReassignRequest
from orchestrator.contracts.failures import DATA_ERROR, FORBIDDEN
from orchestrator.errors import Forbidden, ServiceUnavailable, Unprocessable
from orchestrator.services.checkpoints import _update_refusal
from workers.workflows import checkpoints as module
from workers.workflows.checkpoints import Checkpoints
from workers.workflows.support import Mode


class RecordFailed(Exception):
    pass


def open_checkpoint(required: int = 1) -> tuple[Checkpoints, CheckpointState]:
    inp: Any = SimpleNamespace(task_id="tsk_1", tenant_id="acme", requester_id="usr_req")
    cps = Checkpoints(inp, Mode())
    state = CheckpointState(
        checkpoint_id="cp_1",
        kind="tool_approval",
        tool="refund",
        args={"amount": "10"},
        approval=ApprovalSpec(assignee_role="approver", approvers_required=required),
    )
    cps._states["cp_1"] = state
    cps._locks["cp_1"] = asyncio.Lock()
    return cps, state


@pytest.fixture
def failing_records(monkeypatch: pytest.MonkeyPatch) -> None:
    async def call(*args: Any) -> Any:
        raise RecordFailed("the database refused the record")

    monkeypatch.setattr(module, "call", call)


@pytest.mark.usefixtures("failing_records")
async def test_a_reassignment_that_was_not_recorded_changes_nothing() -> None:
    cps, state = open_checkpoint()
    before = state.model_dump()
    req = ReassignRequest(
        checkpoint_id="cp_1",
        actor_id="usr_admin",
        actor_roles=["admin"],
        assignee_role="admin",
        named_approvers=["usr_x"],
        comment="over to the admins",
    )
    with pytest.raises(RecordFailed):
        await cps.reassign(req)
    assert state.model_dump() == before
    assert state.approval.assignee_role == "approver" and state.approval.named_approvers == []


@pytest.mark.usefixtures("failing_records")
async def test_a_decision_that_was_not_recorded_changes_nothing() -> None:
    cps, state = open_checkpoint(required=2)
    before = state.model_dump()
    approve = DecisionRequest(
        checkpoint_id="cp_1", decision="approve", decider_id="usr_a", decider_roles=["approver"]
    )
    with pytest.raises(RecordFailed):
        await cps.decide(approve)
    reject = DecisionRequest(
        checkpoint_id="cp_1", decision="reject", decider_id="usr_a", decider_roles=["approver"]
    )
    with pytest.raises(RecordFailed):
        await cps.decide(reject)
    assert state.model_dump() == before


async def test_an_edit_that_was_not_recorded_starts_no_new_round(monkeypatch: pytest.MonkeyPatch) -> None:
    cps, state = open_checkpoint()
    state.kind, state.args = "budget_raise", {"limit_usd": "5"}
    before = state.model_dump()

    async def call(*args: Any) -> Any:
        raise RecordFailed("the database refused the record")

    monkeypatch.setattr(module, "call", call)
    edit = DecisionRequest(
        checkpoint_id="cp_1",
        decision="approve_with_edits",
        decider_id="usr_a",
        decider_roles=["approver"],
        edited_args={"new_limit_usd": "9"},
    )
    with pytest.raises(RecordFailed):
        await cps.decide(edit)
    assert state.model_dump() == before


def failed_update(cause: BaseException) -> WorkflowUpdateFailedError:
    activity = ActivityError(
        "activity error",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="record",
        activity_id="1",
        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    activity.__cause__ = cause
    return WorkflowUpdateFailedError(activity)


def test_a_failed_record_answers_503_without_database_text() -> None:
    sql = '(psycopg.OperationalError) server closed the connection [SQL: INSERT INTO "checkpoint_decision"'
    answer = _update_refusal(failed_update(ApplicationError(sql, type="OperationalError")))
    assert isinstance(answer, ServiceUnavailable)
    assert "INSERT" not in answer.detail and "NUL" not in answer.detail and "psycopg" not in answer.detail
    assert "nothing changed" in answer.detail and answer.extra["reference"] in answer.detail


def test_refused_data_answers_422_without_database_text() -> None:
    sql = "the data was refused: (psycopg.DataError) PostgreSQL text fields cannot contain NUL (0x00) bytes"
    answer = _update_refusal(failed_update(ApplicationError(sql, type=DATA_ERROR, non_retryable=True)))
    assert isinstance(answer, Unprocessable)
    assert "psycopg" not in answer.detail and "nothing changed" in answer.detail


def test_the_workflows_own_refusals_still_reach_the_person() -> None:
    answer = _update_refusal(failed_update(ApplicationError("you may not decide", type=FORBIDDEN)))
    assert isinstance(answer, Forbidden) and answer.detail == "you may not decide"
