"""What an activity's failure means, decided once for every activity: a worker interceptor.

    database unreachable      sqlalchemy OperationalError / InterfaceError / DisconnectionError,
    (infrastructure)          pool timeouts, ConnectionError, TimeoutError: retried, and the
                              task waits, until FRONTDESK_INFRA_OUTAGE_MAX_SECONDS have passed
                              since the activity was first scheduled; then final
                              (ApplicationError InfraUnavailable, non-retryable).
    data refused              IntegrityError, DataError, ProgrammingError (constraint, invalid
                              value, NUL byte in text), pydantic ValidationError, LookupError (a
                              row the activity needs is missing): final at once (DataError).
    ApplicationError          the activity decided itself: passed on unchanged (a retryable one
                              is made final after UNEXPECTED_ATTEMPTS attempts).
    anything else             retried as before, at most UNEXPECTED_ATTEMPTS attempts, then final.

The retry policies (workers/workflows/support.py) allow unlimited attempts, so this module is what
bounds them; the limit is a worker setting, not part of workflow code, so it can change without
touching recorded histories.

The interceptor also heartbeats every 2 s while an activity scheduled with a heartbeat timeout
runs, so a worker that dies is noticed within that timeout whatever the activity is doing (a
database round trip in a thread, catalog tool code that never calls `ctx.heartbeat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from temporalio import activity
from temporalio.exceptions import ApplicationError, TemporalError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from orchestrator.contracts import failures
from workers.activities import heartbeating

UNEXPECTED_ATTEMPTS = 10  # an error nobody classified: retried this often, then final

INFRA_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # connection refused or cut, server shutting down, SQLite locked
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came free
    ConnectionError,  # refused, reset, aborted (not every OSError: a missing file is no outage)
    TimeoutError,
)
DATA_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.IntegrityError,
    sa_exc.DataError,
    sa_exc.ProgrammingError,
    ValidationError,
    LookupError,
)


def _first_line(err: BaseException) -> str:
    """The driver's own message (not SQLAlchemy's, which appends the statement), one line."""
    source = err.orig if isinstance(err, sa_exc.DBAPIError) and err.orig is not None else err
    text = str(source).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


@dataclass(frozen=True)
class OutagePolicy:
    max_seconds: float
    unexpected_attempts: int = UNEXPECTED_ATTEMPTS

    def classify(self, err: Exception, *, attempt: int, waited: float) -> Exception:
        """The exception an activity attempt ends with, given what it raised."""
        if isinstance(err, ApplicationError):
            if (
                err.non_retryable
                or err.type == failures.INFRA_UNAVAILABLE
                or attempt < self.unexpected_attempts
            ):
                return err
            return ApplicationError(err.message, *err.details, type=err.type, non_retryable=True)
        if isinstance(err, TemporalError):
            return err
        if isinstance(err, DATA_ERRORS):  # before INFRA_ERRORS: both are sqlalchemy DBAPIErrors
            return ApplicationError(
                f"the data was refused: {_first_line(err)}", type=failures.DATA_ERROR, non_retryable=True
            )
        if isinstance(err, INFRA_ERRORS):
            if waited >= self.max_seconds:
                return ApplicationError(
                    f"the database was unreachable for {waited:.0f} s (the limit is {self.max_seconds:.0f} s, "
                    f"FRONTDESK_INFRA_OUTAGE_MAX_SECONDS): {_first_line(err)}",
                    type=failures.INFRA_UNAVAILABLE,
                    non_retryable=True,
                )
            return ApplicationError(
                f"waiting for the database ({waited:.0f} s of {self.max_seconds:.0f} s): {_first_line(err)}",
                type=failures.INFRA_UNAVAILABLE,
            )
        if attempt >= self.unexpected_attempts:
            return ApplicationError(
                f"{type(err).__name__} on attempt {attempt}: {_first_line(err)}",
                type=type(err).__name__,
                non_retryable=True,
            )
        return err


class OutageInterceptor(Interceptor):
    """Wired into the worker (workers/worker.py) with the worker's FRONTDESK_INFRA_OUTAGE_MAX_SECONDS."""

    def __init__(self, policy: OutagePolicy) -> None:
        self.policy = policy

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Classified(next, self.policy)


class _Classified(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, policy: OutagePolicy) -> None:
        super().__init__(next)
        self._policy = policy

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        try:
            if info.heartbeat_timeout:
                async with heartbeating():
                    return await super().execute_activity(input)
            return await super().execute_activity(input)
        except Exception as err:
            waited = (datetime.now(UTC) - info.scheduled_time).total_seconds()
            final = self._policy.classify(err, attempt=info.attempt, waited=waited)
            if final is err:
                raise
            raise final from err
