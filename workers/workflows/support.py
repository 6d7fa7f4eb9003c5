"""Pure helpers of the task workflow: activity options, step outcomes, prompts.

Imported by workflow code, so: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workers.domain import AgentSpec, ChatMessage, TaskWorkflowInput

RECORD_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_attempts=20, maximum_interval=timedelta(seconds=10)),
}
MODEL_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "retry_policy": RetryPolicy(maximum_attempts=3, non_retryable_error_types=["RouterError"]),
}
TOOL_OPTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=2),
    "heartbeat_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=10)),
}
# A paused task re-checks its switches when told (signal) and, as a fallback, this often.
PAUSE_RECHECK = timedelta(minutes=5)
REPAIR_PREFIX = "Your previous answer was not valid against the output schema"


@dataclass
class StepOutcome:
    status: str  # completed | failed | rejected | limit_reached
    output: dict[str, Any] | None = None
    error: str | None = None


def opening_messages(
    agent: AgentSpec, inp: TaskWorkflowInput, previous: dict[str, Any] | None
) -> list[ChatMessage]:
    system = (
        f"{agent.instructions}\n\nWhen you give your final answer, reply with only a JSON object "
        f"that matches this JSON schema:\n{json.dumps(agent.output_schema, sort_keys=True)}"
    )
    user = inp.input_text
    if inp.input_data:
        user += "\n\nStructured input:\n" + json.dumps(inp.input_data, sort_keys=True)
    if previous is not None:
        user += "\n\nResult of the previous step:\n" + json.dumps(previous, sort_keys=True)
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


def repair_message(errors: str | None) -> ChatMessage:
    return ChatMessage(
        role="user",
        content=f"{REPAIR_PREFIX}: {errors}. Reply with only a JSON object that matches the schema.",
    )


def reason_of(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


def prompt_chars(messages: list[ChatMessage], tools: list[Any]) -> int:
    text = sum(len(m.content or "") + sum(len(c.arguments) for c in m.tool_calls) for m in messages)
    return text + sum(len(json.dumps(t.args_schema)) + len(t.description) for t in tools)
