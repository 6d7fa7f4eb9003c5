"""Sending a checkpoint update (decide, reassign) to the task's workflow, within a bound.

The update's handler records the decision with an activity, and that activity waits out a
database outage for up to FRONTDESK_INFRA_OUTAGE_MAX_SECONDS (15 minutes). A person must not wait
as long: after FRONTDESK_DECISION_WAIT_SECONDS the request asks Temporal, with the same update id,
whether the workflow has *accepted* the update (its validator passed):

    accepted, not yet recorded   `Pending` (202): the workflow holds the decision and records it
                                 when the database is back; nothing to send again
    not accepted                 `NotAccepted` (503, Retry-After): the workflow did not take it
                                 (its worker is down or busy); send it again later

Nothing is lost or counted twice: the workflow applies a decision only once it is recorded, and
checks again, in turn, before recording the next one; so a repeat sent while the first is still
pending is refused once the first is recorded (the person was told not to send it again), and a
repeat after it was recorded is told that it is recorded (`checkpoints._decidable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.contracts import DecisionResult
from orchestrator.errors import ServiceUnavailable

# Temporal takes at most 10 updates in flight per workflow and refuses more with
# RESOURCE_EXHAUSTED (or aborts queued ones under load); a burst of decisions on one checkpoint
# is sent again, and waits its turn, this long.
UPDATE_TURN_SECONDS = 30.0
# How long to ask Temporal whether an update that is still running was accepted.
ACCEPT_PROBE_SECONDS = 5.0
# What a 202 or 503 tells the client to wait before looking again or sending again.
RETRY_AFTER_SECONDS = 30


class Pending(Exception):
    """The workflow accepted the update but has not recorded it yet (the database is down)."""

    def __init__(self, detail: str, *, checkpoint_id: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail)
        self.detail = detail
        self.checkpoint_id = checkpoint_id
        self.retry_after = retry_after


class NotAccepted(ServiceUnavailable):
    """The workflow did not take the update within the bound; send it again later (503)."""

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail, title="Not taken yet", extra={"retry_after": retry_after})
        self.retry_after = retry_after


async def send_bounded(
    client: Any, workflow_id: str, name: str, req: Any, *, update_id: str, wait: float
) -> None:
    """Run the update to completion if it completes within `wait` seconds; else raise `Pending`
    (accepted) or `NotAccepted`. A refusal (`WorkflowUpdateFailedError`) and RPC errors of the
    update itself are raised as they come, for the caller to translate."""
    handle = client.get_workflow_handle(workflow_id)
    turn = _Turn()
    sending = asyncio.ensure_future(send_in_turn(handle, name, req, update_id, turn))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        done, _ = await asyncio.wait({sending}, timeout=max(deadline - loop.time(), 0))
        if sending in done:
            sending.result()
            return
        # Still waiting for its turn (Temporal refuses more than 10 updates in flight per workflow,
        # and refused ones are sent again for up to UPDATE_TURN_SECONDS): not taken, not an outage.
        if loop.time() - turn.refused_at > 2.5:
            break
        deadline = loop.time() + 0.5
    sending.cancel()  # only our wait for the answer: an update Temporal admitted stays admitted
    with contextlib.suppress(BaseException):
        await sending
    try:
        # The same id: Temporal attaches to the update already sent rather than taking a second.
        update = await asyncio.wait_for(
            handle.start_update(
                name,
                req,
                id=update_id,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=DecisionResult,
            ),
            ACCEPT_PROBE_SECONDS,
        )
    except WorkflowUpdateFailedError:
        raise  # the validator refused it after all: the caller says why
    except (TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise NotAccepted(
            f"The task's workflow did not take this request within {wait:.0f} s (its worker may be down "
            f"or busy), so nothing is recorded yet. Send it again in {RETRY_AFTER_SECONDS} s; if it was "
            "taken meanwhile, you will be told it is already recorded."
        ) from exc
    # (Cancelling a wait for an update's answer raises WorkflowUpdateRPCTimeoutOrCancelledError.)
    with contextlib.suppress(TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
        await asyncio.wait_for(update.result(), 0.5)  # it may have been recorded meanwhile
        return
    raise Pending(
        "Your request is accepted by the task and will be recorded as soon as the database is reachable "
        f"again (it did not answer within {wait:.0f} s). Do not send it again; check the checkpoint later.",
        checkpoint_id=getattr(req, "checkpoint_id", ""),
    )


def _send_again(exc: RPCError) -> bool:
    """Refusals that say the update was not taken and may be sent again (with the same id, so
    one that was taken after all is not taken twice): too many in flight, or aborted because the
    workflow's update registry was cleared (a workflow task failed or timed out under load), which
    Temporal answers UNAVAILABLE "workflow update was aborted" and expects the client to retry."""
    if exc.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return True
    return exc.status == RPCStatusCode.UNAVAILABLE and "update was aborted" in exc.message


class _Turn:
    refused_at = float("-inf")  # when Temporal last refused the update for too many in flight


async def send_in_turn(
    handle: Any, name: str, req: Any, update_id: str | None = None, turn: _Turn | None = None
) -> None:
    deadline = asyncio.get_running_loop().time() + UPDATE_TURN_SECONDS
    delay = 0.05
    while True:
        try:
            await handle.execute_update(name, req, id=update_id, result_type=DecisionResult)
            return
        except RPCError as exc:
            if not _send_again(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            if turn is not None:
                turn.refused_at = asyncio.get_running_loop().time()
        await asyncio.sleep(delay + random.uniform(0, delay))  # jitter: the burst does not retry in step
        delay = min(delay * 2, 1.0)
