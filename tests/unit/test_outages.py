"""What an activity failure means (workers/activities/outages.py): a database outage is waited out
up to the setting, refused data is final at once, anything else is final after 10 attempts."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from temporalio.exceptions import ApplicationError

from orchestrator.contracts import failures
from workers.activities.outages import UNEXPECTED_ATTEMPTS, OutagePolicy
from workers.workflows.support import RECORD_OPTS, TOOL_OPTS

POLICY = OutagePolicy(max_seconds=300)


def db_error(kind: type[sa_exc.DBAPIError], message: str) -> sa_exc.DBAPIError:
    return kind("INSERT INTO task (secret) VALUES (%s)", {"x": 1}, Exception(message))


def test_a_refused_connection_is_retried_until_the_limit_then_final() -> None:
    refused = db_error(
        sa_exc.OperationalError, 'connection to server at "127.0.0.1" failed: Connection refused'
    )
    waiting = POLICY.classify(refused, attempt=25, waited=299)
    assert isinstance(waiting, ApplicationError)
    assert waiting.type == failures.INFRA_UNAVAILABLE and not waiting.non_retryable
    assert "waiting for the database" in waiting.message

    final = POLICY.classify(refused, attempt=40, waited=301)
    assert isinstance(final, ApplicationError)
    assert final.type == failures.INFRA_UNAVAILABLE and final.non_retryable
    assert "FRONTDESK_INFRA_OUTAGE_MAX_SECONDS" in final.message


@pytest.mark.parametrize(
    "err", [ConnectionResetError("reset"), TimeoutError("timed out"), sa_exc.TimeoutError("pool")]
)
def test_network_and_pool_failures_count_as_an_outage(err: Exception) -> None:
    out = POLICY.classify(err, attempt=UNEXPECTED_ATTEMPTS + 5, waited=10)
    assert isinstance(out, ApplicationError) and out.type == failures.INFRA_UNAVAILABLE
    assert not out.non_retryable  # beyond the attempts of an unexpected error, still waited out


def test_a_nul_byte_refused_by_postgresql_is_final_at_once_and_names_no_statement() -> None:
    nul = db_error(sa_exc.DataError, "PostgreSQL text fields cannot contain NUL (0x00) bytes")
    out = POLICY.classify(nul, attempt=1, waited=0)
    assert isinstance(out, ApplicationError)
    assert out.type == failures.DATA_ERROR and out.non_retryable
    assert "NUL" in out.message and "INSERT" not in out.message


def test_a_real_constraint_violation_is_final_at_once() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(sa_exc.IntegrityError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    out = POLICY.classify(caught.value, attempt=1, waited=0)
    assert isinstance(out, ApplicationError) and out.type == failures.DATA_ERROR and out.non_retryable


def test_invalid_data_and_missing_rows_are_final() -> None:
    class M(BaseModel):
        n: int

    with pytest.raises(ValidationError) as caught:
        M.model_validate({"n": "x"})
    for err in (caught.value, LookupError("checkpoint cp_1 has no row")):
        out = POLICY.classify(err, attempt=1, waited=0)
        assert isinstance(out, ApplicationError) and out.type == failures.DATA_ERROR and out.non_retryable


def test_an_unexpected_error_keeps_a_bounded_number_of_attempts() -> None:
    bug = ZeroDivisionError("division by zero")
    assert POLICY.classify(bug, attempt=UNEXPECTED_ATTEMPTS - 1, waited=5) is bug
    final = POLICY.classify(bug, attempt=UNEXPECTED_ATTEMPTS, waited=60)
    assert isinstance(final, ApplicationError) and final.non_retryable and final.type == "ZeroDivisionError"


def test_application_errors_pass_unless_they_would_retry_forever() -> None:
    refused = ApplicationError("over budget", type=failures.BUDGET_ERROR, non_retryable=True)
    assert POLICY.classify(refused, attempt=1, waited=0) is refused
    missing = ApplicationError("no row", type=failures.TASK_MISSING)
    assert POLICY.classify(missing, attempt=2, waited=1) is missing
    bounded = POLICY.classify(missing, attempt=UNEXPECTED_ATTEMPTS, waited=60)
    assert (
        isinstance(bounded, ApplicationError)
        and bounded.non_retryable
        and bounded.type == failures.TASK_MISSING
    )


def test_record_and_tool_options_wait_and_notice_a_dead_worker_within_15_seconds() -> None:
    for opts in (RECORD_OPTS, TOOL_OPTS):
        assert opts.heartbeat_timeout is not None
        first_retry = opts.retry_policy.initial_interval
        assert (opts.heartbeat_timeout + first_retry).total_seconds() <= 15
        assert opts.retry_policy.maximum_attempts == 0  # bounded by the worker's classification
        assert failures.DATA_ERROR in (opts.retry_policy.non_retryable_error_types or [])


def test_an_os_error_that_is_no_outage_is_not_waited_out() -> None:
    missing = FileNotFoundError("no such file: prices.yaml")
    assert POLICY.classify(missing, attempt=1, waited=0) is missing  # retried as an unexpected error
