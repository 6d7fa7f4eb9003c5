"""Every activity of the task workflow: its name, its input and its result, declared once.

The workflow calls an activity through its contract (`workers.workflows.support.call`) and the
worker registers the implementation under the contract (`workers.activities.implements`), so the
two sides cannot disagree on a name or a type. The names are part of every recorded history:
they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from orchestrator.contracts.governance import (
    AuthorizeToolInput,
    AuthorizeToolResult,
    CheckpointDecisionRecord,
    CheckpointOpenInput,
    EscalateInput,
    RaiseBudgetInput,
    ReassignRecord,
    ReauthorizeInput,
    ReauthorizeResult,
    ReleaseInput,
    ReserveInput,
    ReserveResult,
    SwitchCheckInput,
    SwitchCheckResult,
    ToolRunInput,
    ToolRunResult,
    ValidateOutputInput,
    ValidateOutputResult,
)
from orchestrator.contracts.messages import (
    Ack,
    ModelCallInput,
    ModelCallResult,
    StepRecord,
    TaskStatusUpdate,
    ValidatePlanInput,
    ValidatePlanResult,
)
from orchestrator.contracts.round_trips import (
    ModelTurnInput,
    ModelTurnResult,
    TaskRecordBatch,
    ToolStepInput,
    ToolStepResult,
)

InT = TypeVar("InT")
OutT = TypeVar("OutT")


@dataclass(frozen=True)
class ActivityContract(Generic[InT, OutT]):
    """One activity: the name it is registered and called by, one model in, one model out."""

    name: str
    input: type[InT]
    result: type[OutT]


# -- the task's own records ------------------------------------------------------------------------
SET_TASK_STATUS = ActivityContract("task.set_status", TaskStatusUpdate, Ack)
RECORD_STEP = ActivityContract("task.record_step", StepRecord, Ack)

# -- combined round trips (TaskWorkflowInput.round_trips; orchestrator/contracts/round_trips.py) ---
RECORD_TASK = ActivityContract("task.record", TaskRecordBatch, Ack)  # run as a local activity
MODEL_TURN = ActivityContract("model.turn", ModelTurnInput, ModelTurnResult)
TOOL_STEP = ActivityContract("tool.step", ToolStepInput, ToolStepResult)

# -- model calls and the checks of an agent's answers --------------------------------------------
CALL_MODEL = ActivityContract("model.call", ModelCallInput, ModelCallResult)
VALIDATE_OUTPUT = ActivityContract("agent.validate_output", ValidateOutputInput, ValidateOutputResult)
VALIDATE_PLAN = ActivityContract("plan.validate", ValidatePlanInput, ValidatePlanResult)

# -- budgets and kill switches --------------------------------------------------------------------
RESERVE_BUDGET = ActivityContract("budget.reserve", ReserveInput, ReserveResult)
RAISE_BUDGET = ActivityContract("budget.raise", RaiseBudgetInput, Ack)
RELEASE_BUDGET = ActivityContract("budget.release", ReleaseInput, Ack)
CHECK_SWITCHES = ActivityContract("switch.check", SwitchCheckInput, SwitchCheckResult)

# -- tool authorization and checkpoints ------------------------------------------------------------
AUTHORIZE_TOOL = ActivityContract("policy.authorize_tool", AuthorizeToolInput, AuthorizeToolResult)
OPEN_CHECKPOINT = ActivityContract("checkpoint.open", CheckpointOpenInput, Ack)
RECORD_DECISION = ActivityContract("checkpoint.record_decision", CheckpointDecisionRecord, Ack)
REAUTHORIZE_EDIT = ActivityContract("checkpoint.reauthorize", ReauthorizeInput, ReauthorizeResult)
ESCALATE_CHECKPOINT = ActivityContract("checkpoint.escalate", EscalateInput, Ack)
RECORD_REASSIGN = ActivityContract("checkpoint.record_reassign", ReassignRecord, Ack)

# Every fixed activity a worker of the task workflow must register (tools come on top).
TASK_ACTIVITIES: tuple[ActivityContract[Any, Any], ...] = (
    SET_TASK_STATUS,
    RECORD_STEP,
    RECORD_TASK,
    MODEL_TURN,
    TOOL_STEP,
    CALL_MODEL,
    VALIDATE_OUTPUT,
    VALIDATE_PLAN,
    RESERVE_BUDGET,
    RAISE_BUDGET,
    RELEASE_BUDGET,
    CHECK_SWITCHES,
    AUTHORIZE_TOOL,
    OPEN_CHECKPOINT,
    RECORD_DECISION,
    REAUTHORIZE_EDIT,
    ESCALATE_CHECKPOINT,
    RECORD_REASSIGN,
)


def tool_activity_name(tool: str) -> str:
    """One activity per tool name, built from the registered name (never a Python qualname);
    every version of a tool shares it, and the activity looks the version up."""
    return f"tool__{tool}__call"


def run_tool(tool: str) -> ActivityContract[ToolRunInput, ToolRunResult]:
    """The activity that runs `tool` (by its registered name, without a version)."""
    return ActivityContract(tool_activity_name(tool), ToolRunInput, ToolRunResult)
