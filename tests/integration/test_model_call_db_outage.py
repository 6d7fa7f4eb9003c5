"""A database outage while the model-call activity records its router requests is waited out
inside the activity, like every other activity waits one out: the router's answer is kept while
its record is retried, so the router is asked once, the call completes once the database is back,
and its cost is in the books and the budget once. An outage longer than
FRONTDESK_INFRA_OUTAGE_MAX_SECONDS fails the call for good (InfraUnavailable), as elsewhere.

Real outages: a private PostgreSQL server (reliability/postgres.py) stopped mid-call.
"""

from __future__ import annotations

import glob
import shutil
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from repo_paths import REPO_ROOT, SHIPPED_POLICIES
from reserved_calls import reserved_call
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.budgets.pricing import PriceTable
from orchestrator.contracts import ModelCallInput, failures
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import seed_demo
from orchestrator.models import BudgetReservation, ModelCall
from workers.activities.model_calls import ModelActivities
from workers.router_client import RouterClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PRICES = PriceTable.load(SHIPPED_POLICIES / "prices.yaml")
REAL = Decimal("0.00002")
OUTAGE = 12.0


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not shutil.which("runuser") or not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("needs PostgreSQL's initdb and pg_ctl to run a private server")
    import sys

    sys.path.insert(0, str(REPO_ROOT))
    from reliability.postgres import PrivatePostgres

    pg = PrivatePostgres()
    pg.create()
    try:
        migrate(pg.url)
        engine = make_engine(pg.url)
        seed_demo(engine, tmp_path_factory.mktemp("seed"))
        yield pg, engine
        engine.dispose()
    finally:
        pg.destroy()


def a_call(engine: Any) -> tuple[ModelCallInput, Any]:
    return reserved_call(engine)


def router_that_stops(pg: Any, requests: list[httpx.Request], restart_after: float | None) -> RouterClient:
    """Answers at once, but first stops the database: the answer's record meets the outage."""

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        pg.stop()
        if restart_after is not None:
            threading.Timer(restart_after, pg.start).start()
        return httpx.Response(
            200,
            json={
                "model": "tier-slm",
                "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10},
            },
            headers={"x-litellm-response-cost": str(REAL)},
        )

    return RouterClient(
        "http://router.test", "key", prices=PRICES, transport=httpx.MockTransport(handler), backoff_seconds=0
    )


async def test_the_answer_is_kept_while_its_record_waits_out_the_outage(private_pg: Any) -> None:
    pg, engine = private_pg
    call, budgets = a_call(engine)
    requests: list[httpx.Request] = []
    router = router_that_stops(pg, requests, restart_after=OUTAGE)
    activities = ModelActivities(engine, router, budgets, infra_outage_max_seconds=120)
    started = time.monotonic()
    result = await ActivityEnvironment().run(activities.call, call)
    took = time.monotonic() - started
    await router.aclose()

    assert len(requests) == 1  # the router was asked once
    assert took >= OUTAGE - 1, took  # ...and the record waited for the database
    assert result.message.content == "ok" and Decimal(result.cost_usd) == REAL
    with session_scope(engine) as session:
        rows = session.exec(select(ModelCall).where(ModelCall.request_id == call.request_id)).all()
        reservation = session.get_one(BudgetReservation, call.request_id)
    assert [(r.status, r.ok, r.cost_usd) for r in rows] == [("done", True, REAL)]
    assert (reservation.status, reservation.settled_usd) == ("settled", REAL)


async def test_an_outage_past_the_limit_fails_the_call_for_good(private_pg: Any) -> None:
    pg, engine = private_pg
    call, budgets = a_call(engine)
    requests: list[httpx.Request] = []
    router = router_that_stops(pg, requests, restart_after=None)
    activities = ModelActivities(engine, router, budgets, infra_outage_max_seconds=4)
    try:
        with pytest.raises(ApplicationError) as failed:
            await ActivityEnvironment().run(activities.call, call)
    finally:
        await router.aclose()
        pg.start()
    assert failed.value.type == failures.INFRA_UNAVAILABLE and failed.value.non_retryable
    assert "FRONTDESK_INFRA_OUTAGE_MAX_SECONDS" in failed.value.message
    assert len(requests) == 1
