"""A NUL character typed or pasted into a page form is refused with a page that says so, on
PostgreSQL too (which cannot store it): the multipart task form, which the edge check leaves to
its parser, and the sign-in form."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from orchestrator.db import session_scope
from orchestrator.models import Task
from webui.conftest import sign_in


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_a_nul_in_the_task_form_is_refused(api_only: Any) -> None:
    riley = await sign_in(api_only.app, api_only.db, "riley")
    with session_scope(api_only.db.engine) as session:
        before = session.exec(select(func.count()).select_from(Task)).one()
    form = {"csrf_token": riley.csrf, "input": "refund\x00 please", "workflow": "summary"}
    r = await riley.client.post("/tasks", data=form, files={"attachment": ("a.txt", b"", "text/plain")})
    assert 400 <= r.status_code < 500 and "NUL" in r.text, (r.status_code, r.text[:800])
    r = await riley.client.post(
        "/tasks", data=form | {"input": "x"}, files={"attachment": ("m.txt", b"line\x00two", "text/plain")}
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:800])
    with session_scope(api_only.db.engine) as session:
        assert session.exec(select(func.count()).select_from(Task)).one() == before
