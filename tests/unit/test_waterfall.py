"""The task page's waterfall: where each bar starts and how long it runs, from the task's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orchestrator.services.schemas import (
    CheckpointPublic,
    CostSummary,
    ModelCallPublic,
    StepPublic,
    TaskDetail,
    ToolCallPublic,
)
from orchestrator.web import waterfall

T0 = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def step(index: int, name: str, start: float, end: float | None) -> StepPublic:
    return StepPublic(index=index, name=name, agent="refund_agent", kind="agent", rung=0, tier="cheap",
                      status="completed" if end is not None else "running", output=None, error=None,
                      started_at=at(start), ended_at=at(end) if end is not None else None)  # fmt: skip


def model(step: str, start: float, latency: float, cost: str, status: str = "done") -> ModelCallPublic:
    return ModelCallPublic(id=f"mc{start}", step=step, agent="refund_agent", turn=1, attempt=1, activity_attempt=1,
                           tier="cheap", model_served="demo-small", model_group=None, fallbacks=0, prompt_tokens=10,
                           completion_tokens=5, cached_tokens=0, cost_usd=Decimal(cost), cost_estimated=False,
                           latency_ms=latency, http_status=200, ok=True, error=None, status=status,
                           created_at=at(start))  # fmt: skip


def tool(start: float, end: float, status: str) -> ToolCallPublic:
    return ToolCallPublic(id="tc1", step="decide", turn=2, agent="refund_agent", tool="issue_refund", args={},
                          args_digest="d", effect="irreversible", policy_version="v", rule="r", reason="",
                          status=status, result=None, error=None, created_at=at(start), updated_at=at(end))  # fmt: skip


def checkpoint(start: float, decided: float | None, status: str) -> CheckpointPublic:
    return CheckpointPublic(id="cp1", task_id="tsk_1", kind="tool_approval", step="decide", tool="issue_refund",
                            args={}, args_digest="d", policy_version="v", rule="r", rule_id="refund-approval",
                            reason="", assignee_role="approver", extra_roles=[], named_approvers=[],
                            approvers_required=1, escalation_level=0, due_at=None, requester_id="u1", status=status,
                            edited_args=None, edit_diff=None, decided_by=None,
                            decided_at=at(decided) if decided is not None else None, comment=None,
                            created_at=at(start))  # fmt: skip


def detail(ended: float | None, **rows: Any) -> TaskDetail:
    return TaskDetail(id="tsk_1", workflow="refund_request@1", status="completed" if ended else "waiting",
                      outcome=None, requester_id="u1", created_at=T0, ended_at=at(ended) if ended else None,
                      cost=CostSummary(total_usd=Decimal(0), estimated=False, model_calls=0), input="", data={},
                      output=None, error=None, steps=rows.get("steps", []), model_calls=rows.get("models", []),
                      tool_calls=rows.get("tools", []), checkpoints=rows.get("checkpoints", []))  # fmt: skip


def test_an_ended_task_has_every_row_as_a_bar_in_start_order() -> None:
    d = detail(
        5000,
        steps=[step(0, "decide", 20, 4900)],
        models=[model("decide", 30, 400, "0.0012"), model("decide", 4500, 300, "0.0020")],
        tools=[tool(450, 4400, "succeeded")],
        checkpoints=[checkpoint(460, 4300, "approved")],
    )
    wf = waterfall.build(d, now=at(99_999))
    assert [(b.kind, round(b.start_ms), round(b.duration_ms)) for b in wf.bars] == [
        ("step", 20, 4880),
        ("model", 30, 400),
        ("tool", 450, 3950),
        ("wait", 460, 3840),
        ("model", 4500, 300),
    ]
    assert wf.total_ms == 5000  # to the task's end, not to now
    assert wf.bars[0].cost_usd == Decimal("0.0032")  # the step's model calls
    assert wf.bars[1].text == "400 ms · $0.0012" and wf.bars[3].text == "3.8 s"
    assert not any(b.running for b in wf.bars)
    assert wf.desc == (
        "5.0 s from submission: 1 step, 2 model calls, 1 tool call, 1 waiting for a decision. "
        "Longest: issue_refund (irreversible, succeeded), 4.0 s."
    )


def test_what_is_still_going_runs_to_now() -> None:
    d = detail(
        None,
        steps=[step(0, "decide", 0, None)],
        models=[model("decide", 10, 0, "0.0001", status="sent")],
        checkpoints=[checkpoint(100, None, "open")],
    )
    wf = waterfall.build(d, now=at(90 * 60_000))
    wait = next(b for b in wf.bars if b.kind == "wait")
    assert wait.running and round(wait.duration_ms) == 90 * 60_000 - 100
    assert wait.text == "90.0 min so far"
    assert all(b.running for b in wf.bars)
    assert round(wf.total_ms) == 90 * 60_000


def test_nothing_run_yet() -> None:
    wf = waterfall.build(detail(None), now=at(10))
    assert wf.bars == [] and wf.total_ms == 0 and wf.desc == "Nothing has run yet."


def test_durations_read_in_the_unit_that_fits() -> None:
    assert [waterfall.duration_text(ms) for ms in (0, 999, 1500, 119_000, 150_000, 8_000_000)] == [
        "0 ms", "999 ms", "1.5 s", "119.0 s", "2.5 min", "2.2 h",
    ]  # fmt: skip
