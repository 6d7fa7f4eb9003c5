"""A task's cost in the list and on its page is the exact sum of its router requests, on SQLite
(summed in Decimal by the service) and on PostgreSQL (summed as NUMERIC by the database)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from orchestrator.db import session_scope
from orchestrator.models import ModelCall, Task, utcnow

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)


@BOTH
async def test_list_and_detail_sum_every_request_exactly(api_only: Any) -> None:
    gina = api_only.db.user_ids["gina"]
    at = utcnow() + timedelta(days=3650)  # newer than any other test's tasks: first on the page
    costs = {
        "three calls": (["0.1", "0.2", "0.000000001"], [False, False, False]),
        "one estimated": (["0.3", "0.000000002"], [False, True]),
        "no calls": ([], []),
    }
    ids = {}
    with session_scope(api_only.db.engine) as session:
        for i, (label, (amounts, estimated)) in enumerate(costs.items()):
            task = Task(tenant_id="globex", requester_id=gina, workflow_name="summary", workflow_version="1",
                        input_text=label, definition_json="{}", created_at=at + timedelta(seconds=i))  # fmt: skip
            session.add(task)
            session.flush()
            ids[label] = task.id
            for n, (amount, est) in enumerate(zip(amounts, estimated, strict=True)):
                session.add(ModelCall(tenant_id="globex", task_id=task.id, step="s", agent="a", turn=1,
                                      request_id=f"{task.id}-{n}", attempt=1, tier="cheap", ok=True,
                                      cost_usd=Decimal(amount), cost_estimated=est))  # fmt: skip
    auth = api_only.auth("gina")
    listed = (await api_only.api.get("/api/tasks?limit=10", headers=auth)).json()["items"]
    by_id = {t["id"]: t["cost"] for t in listed}
    expected = {
        "three calls": ("0.300000001", 3, False),
        "one estimated": ("0.300000002", 2, True),
        "no calls": ("0", 0, False),
    }
    for label, (total, calls, estimated) in expected.items():
        for cost in (
            by_id[ids[label]],
            (await api_only.api.get(f"/api/tasks/{ids[label]}", headers=auth)).json()["cost"],
        ):
            assert Decimal(str(cost["total_usd"])) == Decimal(total), (label, cost)
            assert cost["model_calls"] == calls and cost["estimated"] is estimated, (label, cost)
