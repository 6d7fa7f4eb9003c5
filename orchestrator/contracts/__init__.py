"""The contracts the control plane and the workers share: pure pydantic models and stable names.

    specs        what a workflow, an agent and a tool are (pinned into every task)
    messages     the task workflow's input and result, chat turns, step records, model calls
    governance   tool authorization, checkpoints, budgets, kill switches, tool runs
    deciders     who may decide a checkpoint (the workflow, the services and the UI ask it)
    names        the workflow, update and signal names every recorded history carries
    activities   each activity's name, input and result, declared once
    failures     the ApplicationError types a workflow or an activity may end with

Nothing here does I/O or reads a clock, so workflow code may import all of it. Import from this
package (`from orchestrator.contracts import WorkflowSpec`); the modules say where a thing lives.
"""

from __future__ import annotations

from orchestrator.contracts.deciders import Refusal, why_not_decide
from orchestrator.contracts.governance import (
    ApprovalSpec,
    AuthorizeToolInput,
    AuthorizeToolResult,
    BudgetBreachInfo,
    CheckpointDecisionRecord,
    CheckpointOpenInput,
    CheckpointState,
    DecisionRequest,
    DecisionResult,
    EscalateInput,
    EscalationStep,
    RaiseBudgetInput,
    ReassignRecord,
    ReassignRequest,
    ReauthorizeInput,
    ReauthorizeResult,
    ReleaseInput,
    ReserveInput,
    ReserveResult,
    SwitchCheckInput,
    SwitchCheckResult,
    SwitchInfo,
    ToolRunInput,
    ToolRunResult,
    ValidateOutputInput,
    ValidateOutputResult,
)
from orchestrator.contracts.messages import (
    Ack,
    ChatMessage,
    ModelCallInput,
    ModelCallResult,
    RoutingFacts,
    StepRecord,
    TaskStatusUpdate,
    TaskWorkflowInput,
    TaskWorkflowResult,
    ToolCallRequest,
    ValidatePlanInput,
    ValidatePlanResult,
)
from orchestrator.contracts.names import (
    DECIDE_UPDATE_NAME,
    REASSIGN_UPDATE_NAME,
    SWITCHES_CHANGED_SIGNAL,
    TASK_WORKFLOW_NAME,
)
from orchestrator.contracts.specs import (
    TERMINAL_STATUSES,
    AgentSpec,
    CheckpointKind,
    CheckpointStatus,
    DecisionKind,
    Plan,
    PlanStep,
    PolicyEffect,
    SideEffect,
    StepSpec,
    TaskOutcome,
    TaskStatus,
    ToolSpec,
    ValidatorSpec,
    WorkflowSpec,
)

__all__ = [
    "DECIDE_UPDATE_NAME",
    "REASSIGN_UPDATE_NAME",
    "SWITCHES_CHANGED_SIGNAL",
    "TASK_WORKFLOW_NAME",
    "TERMINAL_STATUSES",
    "Ack",
    "AgentSpec",
    "ApprovalSpec",
    "AuthorizeToolInput",
    "AuthorizeToolResult",
    "BudgetBreachInfo",
    "ChatMessage",
    "CheckpointDecisionRecord",
    "CheckpointKind",
    "CheckpointOpenInput",
    "CheckpointState",
    "CheckpointStatus",
    "DecisionKind",
    "DecisionRequest",
    "DecisionResult",
    "EscalateInput",
    "EscalationStep",
    "ModelCallInput",
    "ModelCallResult",
    "Plan",
    "PlanStep",
    "PolicyEffect",
    "RaiseBudgetInput",
    "ReassignRecord",
    "ReassignRequest",
    "ReauthorizeInput",
    "ReauthorizeResult",
    "Refusal",
    "ReleaseInput",
    "ReserveInput",
    "ReserveResult",
    "RoutingFacts",
    "SideEffect",
    "StepRecord",
    "StepSpec",
    "SwitchCheckInput",
    "SwitchCheckResult",
    "SwitchInfo",
    "TaskOutcome",
    "TaskStatus",
    "TaskStatusUpdate",
    "TaskWorkflowInput",
    "TaskWorkflowResult",
    "ToolCallRequest",
    "ToolRunInput",
    "ToolRunResult",
    "ToolSpec",
    "ValidateOutputInput",
    "ValidateOutputResult",
    "ValidatePlanInput",
    "ValidatePlanResult",
    "ValidatorSpec",
    "WorkflowSpec",
    "why_not_decide",
]
