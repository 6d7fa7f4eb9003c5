"""Pure helpers of the task workflow: the typed activity call and its options, step outcomes,
prompts.

Imported by workflow code, so: no I/O, no clocks, no randomness.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from orchestrator.contracts import ActivityContract, AgentSpec, ChatMessage, TaskWorkflowInput, failures

InT = TypeVar("InT")
OutT = TypeVar("OutT")


@dataclass(frozen=True)
class ActivityOptions:
    """How long an activity may take and how it is retried (part of every scheduled activity)."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    heartbeat_timeout: timedelta | None = None


# Timeouts and retries per activity kind. A task interrupted by a worker crash resumes about 11 s
# after a worker is available: every activity has a 10 s heartbeat timeout (the worker heartbeats
# every 2 s while any activity runs, workers/activities/outages.py), and the first retry follows 1 s
# later. Attempts are unlimited here because the worker decides what is final: refused data
# (DataError) at once, a database outage after FRONTDESK_INFRA_OUTAGE_MAX_SECONDS (InfraUnavailable),
# any other error after 10 attempts. Changing these is replay-safe (options are not history checks).
#
#   kind                                  options      start-to-close  heartbeat  retry
#   task/step records, governance         RECORD_OPTS  60 s            10 s       1 s doubling to 10 s;
#   (authorize, checkpoints), budgets,                 (SQLite waits up to        outage: setting;
#   switches, plan + output validation                 30 s for its lock)         data: final
#   catalog tools                         TOOL_OPTS    2 min           10 s       same as records
#   model calls                           MODEL_OPTS   45 min          10 s       3 attempts;
#   (router and database outages are waited                                       RouterError final
#   out inside the activity)
_WAIT_OUT = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # unlimited: bounded by the worker (see above)
    non_retryable_error_types=[failures.DATA_ERROR, failures.TASK_MISSING],
)
RECORD_OPTS = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=_WAIT_OUT,
)
MODEL_OPTS = ActivityOptions(
    # Router outages are waited out inside the activity (see workers/activities/model_calls.py)
    # for up to router_outage_max_seconds (at most 25 minutes), plus the last request's timeout;
    # so are database outages while its requests are recorded (infra_outage_max_seconds, 15 minutes
    # by default), the router's answer kept meanwhile: attempts are not spent on them.
    start_to_close_timeout=timedelta(minutes=45),
    # The activity heartbeats every 2 s while it waits on the router: a crashed worker's call is
    # retried elsewhere after 10 s instead of after the start-to-close timeout.
    heartbeat_timeout=timedelta(seconds=10),
    # The router client retries within its own request budget; its refusal is final.
    retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=[failures.ROUTER_ERROR]),
)
# The worker heartbeats around the tool call itself, so catalog code that never calls
# `ctx.heartbeat` is not timed out for that, and a dead worker is still noticed in 10 s; a tool that
# hangs is bounded by the 2-minute start-to-close timeout, and its retry reuses the idempotency key.
TOOL_OPTS = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=2),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=_WAIT_OUT,
)


# The task's own status and step records run as one local activity on the combined path: no
# dispatch, no workflow task of their own, one marker event. A database outage is retried in the
# worker like any activity's (the workflow task heartbeats meanwhile). Not checkpoint decisions: an
# update's workflow task can be dropped, and a local activity in it would have written anyway.
LOCAL_RECORD_OPTS = ActivityOptions(start_to_close_timeout=timedelta(seconds=60), retry_policy=_WAIT_OUT)


@dataclass
class Mode:
    """Which path the task takes, decided once when it starts: `combined` (the input's
    `round_trips`) asks for what belongs together in one activity; histories from before it replay
    the chain of single activities they recorded."""

    combined: bool = False


async def call(
    contract: ActivityContract[InT, OutT], arg: InT, options: ActivityOptions, *, local: bool = False
) -> OutT:
    """Run the activity `contract` names, with its declared input, decoding its declared result:
    the one way workflow code calls an activity (`local`: as a local activity, for short writes
    the workflow waits on anyway)."""
    if not isinstance(arg, contract.input):
        raise TypeError(f"{contract.name} takes a {contract.input.__name__}, not {type(arg).__name__}")
    result: OutT
    if local:
        result = await workflow.execute_local_activity(
            contract.name,
            arg,
            result_type=contract.result,
            start_to_close_timeout=options.start_to_close_timeout,
            retry_policy=options.retry_policy,
        )
        return result
    result = await workflow.execute_activity(
        contract.name,
        arg,
        result_type=contract.result,
        start_to_close_timeout=options.start_to_close_timeout,
        heartbeat_timeout=options.heartbeat_timeout,
        retry_policy=options.retry_policy,
    )
    return result


# A paused task re-checks its switches when told (signal) and, as a fallback, this often.
PAUSE_RECHECK = timedelta(minutes=5)
PAUSE_RECHECK_MAX = timedelta(hours=2)
REPAIR_PREFIX = "Your previous answer was not valid against the output schema"

OutcomeStatus = Literal["completed", "failed", "rejected", "limit_reached"]
StepStatus = OutcomeStatus | Literal["running", "skipped"]


@dataclass
class StepOutcome:
    status: OutcomeStatus
    output: dict[str, Any] | None = None
    error: str | None = None
    rung: int | None = None  # which rung of the ladder answered
    tier: str | None = None
    escalated: bool = False  # a person accepted the answer after the last rung


def refusal(what: str, status: str, decided_by: str, comment: str) -> str:
    by = decided_by or "a reviewer"
    verb = "changes were requested" if status == "changes_requested" else f"{what} was {status}"
    return f"{verb} by {by}" + (f": {comment}" if comment else "")


def opening_messages(
    agent: AgentSpec,
    inp: TaskWorkflowInput,
    outputs: dict[str, Any],
    *,
    assignment: str | None = None,
    note: str | None = None,
) -> list[ChatMessage]:
    """The conversation an agent step starts from: its instructions and output schema, the task's
    input, every earlier step's result ("Results so far:" + JSON keyed by step name), its part of a
    plan, and why an earlier attempt was not accepted."""
    system = (
        f"{agent.instructions}\n\nWhen you give your final answer, reply with only a JSON object "
        f"that matches this JSON schema:\n{json.dumps(agent.output_schema, sort_keys=True)}"
    )
    user = inp.input_text
    if inp.input_data:
        user += "\n\nStructured input:\n" + json.dumps(inp.input_data, sort_keys=True)
    if outputs:
        user += "\n\nResults so far:\n" + json.dumps(outputs, sort_keys=True)
    if assignment:
        user += "\n\nYour part of the plan: " + assignment
    if note:
        user += "\n\n" + note
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


def lookup(outputs: dict[str, Any], inp: TaskWorkflowInput, path: str) -> Any:
    """`input.text`, `input.<key>` or `steps.<step>.<field>[.<field>...]`; None when absent."""
    head, _, rest = path.partition(".")
    if head == "input":
        value: Any = {"text": inp.input_text, **inp.input_data}
    elif head == "steps":
        value = outputs
    else:
        return None
    for part in rest.split(".") if rest else []:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(template: Any, outputs: dict[str, Any], inp: TaskWorkflowInput) -> Any:
    """Fill a tool step's arguments: a string that is exactly `{path}` takes the value itself
    (numbers stay numbers); other strings get each `{path}` replaced by its text."""
    if isinstance(template, dict):
        return {k: render(v, outputs, inp) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, outputs, inp) for v in template]
    if not isinstance(template, str):
        return template
    if template.startswith("{") and template.endswith("}") and template.count("{") == 1:
        return lookup(outputs, inp, template[1:-1])
    return re.sub(r"\{([a-z_][\w.]*)\}", lambda m: str(lookup(outputs, inp, m.group(1)) or ""), template)


def holds(condition: str | None, outputs: dict[str, Any], inp: TaskWorkflowInput) -> bool:
    """A step's `when`: true when the named value is truthy (no condition: always)."""
    if not condition:
        return True
    return bool(lookup(outputs, inp, condition.strip()))


def judge_accepts(output: dict[str, Any] | None) -> tuple[bool, str]:
    if not output:
        return False, "the judge gave no answer"
    return bool(output.get("approve")), str(output.get("reason", ""))
