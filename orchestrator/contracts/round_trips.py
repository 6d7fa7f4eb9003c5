"""Messages of the combined activities: one round trip where the task once made several.

Every scheduled activity costs the Temporal server a dispatch, six history events and a workflow
task, so the task workflow (for tasks started with `TaskWorkflowInput.round_trips`) asks for what
belongs together at once:

    task.record  (local)  status changes and step records written together, in one transaction
    model.turn            kill switches + budget reservation + the model call + (for a final
                          answer) its validation against the agent's output model, or (for tool
                          calls) each call's tool.step as far as they go without waiting
    tool.step             authorization + the tool run, or + the opening of its checkpoint;
                          after an approval: kill switches + the run of exactly the approved args

Nothing is skipped: each part is the code its own activity ran before, in the same order, and
each stops the round trip where the old chain would have gone back to the workflow (a refused
reservation, a denied or paused call, an approval to wait for).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from orchestrator.contracts.governance import (
    AuthorizeToolInput,
    AuthorizeToolResult,
    ReserveResult,
    SwitchInfo,
    ToolRunInput,
    ToolRunResult,
    ValidateOutputResult,
)
from orchestrator.contracts.messages import ModelCallInput, ModelCallResult, StepRecord, TaskStatusUpdate


def tool_record_id(task_id: str, prefix: str, index: int) -> str:
    """The record id (and idempotency key) of the `index`-th tool call of a model turn: the same
    whether the turn's activity or the workflow's own tool.step takes the call."""
    return f"{task_id}:{prefix}:{index}"


class TaskRecordBatch(BaseModel):
    """The task's own records, written in one transaction: a status that is not final first, then
    the step records in order, then a final status (which must come last: it closes the task)."""

    status: TaskStatusUpdate | None = None
    steps: list[StepRecord] = Field(default_factory=list)


class ModelTurnInput(ModelCallInput):
    """One agent turn: the call, plus what its reservation and its validation need."""

    prompt_chars: int = 0  # the reservation's estimate of the prompt
    step_limit_usd: str | None = None
    output_model: str | None = None  # a final answer (no tool calls) is validated against it
    # Set (with `tools` and `output_schema` left empty): the activity offers this agent's tools and
    # asks for its output schema as the task's pinned definition holds them, instead of every
    # turn's input carrying them.
    pinned_agent: str | None = None
    # Set: the tool calls the model asks for are authorized and, as far as they go without waiting,
    # run in the same round trip (`ModelTurnResult.tools`); the workflow does the rest one by one.
    tool_record_prefix: str | None = None  # the calls' record ids: <task>:<prefix>:<index>
    checkpoint_id: str = ""  # opened, under this id, for the first call that needs an approval


class ModelTurnResult(BaseModel):
    reserve: ReserveResult  # not ok: a switch or a budget refused it, and the model was not called
    reply: ModelCallResult | None = None
    checked: ValidateOutputResult | None = None  # the final answer's validation
    # The first tool calls of the reply, each decided (allowed and run, denied, or waiting for the
    # approval opened as `checkpoint_id`, which ends the list); the calls after them are the
    # workflow's to take one by one (a paused switch, an error, or an approval came first).
    tools: list[ToolStepResult] = Field(default_factory=list)


class ToolStepInput(BaseModel):
    """Either `authorize` (a call the model asked for) or `approved` (a call a person approved)."""

    authorize: AuthorizeToolInput | None = None
    checkpoint_id: str = ""  # opened, under this id, when the policy asks for an approval
    approved: ToolRunInput | None = None
    agent: str = ""  # whose call it is: the kill switches of that agent apply


class ToolStepResult(BaseModel):
    auth: AuthorizeToolResult | None = None  # the policy's decision (authorize only)
    checkpoint_opened: bool = False  # the call waits for the approval opened as `checkpoint_id`
    switch: SwitchInfo | None = None  # approved, but a kill switch holds it: not run
    run: ToolRunResult | None = None  # None: the tool did not run


ModelTurnResult.model_rebuild()
