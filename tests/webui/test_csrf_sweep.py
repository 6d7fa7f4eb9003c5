"""CSRF sweep of every state-changing form of the web UI (reliability/security.py).

The forms come from the app's route table: a new POST/PUT/PATCH/DELETE page route fails
`test_every_state_changing_form_is_in_the_sweep` until the sweep knows how to fill it. Each form is
sent by a signed-in person with (1) no token, (2) another session's token, (3) the right token from
another Origin, (4) Origin "null", (5) Sec-Fetch-Site cross-site and (6) another session's token in
X-CSRF-Token: each is refused with 403 and changes nothing; then, with the session's own token,
the same form is not refused for CSRF. Real objects: the stack's worker brings the tenant's refund
tasks to their checkpoints, so the decision, edit, comment and cancel forms act on real ones.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from conftest import SeededDb, Stack, stack_settings
from repo_paths import REPO_ROOT

from orchestrator.app import build_state, create_app


@pytest.fixture
def security(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from reliability import security

    return security


def test_every_state_changing_form_is_in_the_sweep(
    security: ModuleType, sqlite_db: SeededDb, tmp_path: Path
) -> None:
    settings = stack_settings(sqlite_db, "http://127.0.0.1:9", tmp_path)
    app = create_app(settings, state=build_state(settings, engine=sqlite_db.engine))
    forms = security.web_forms(app)
    missing = [r for r in forms if r not in security.FORMS]
    assert not missing, f"state-changing page routes the CSRF sweep does not fill: {missing}"
    assert ("POST", "/login") in forms and len(forms) >= 14


@pytest.mark.router
@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_every_form_refuses_a_missing_foreign_or_cross_origin_token(
    security: ModuleType, stack: Stack, db: SeededDb
) -> None:
    t = security.make_tenant(db.engine, f"xc{secrets.token_hex(3)}", security.new_marker())
    async with security.new_client("https://frontdesk", httpx.ASGITransport(app=stack.app)) as http:
        await security.populate(http, t)
        r: dict[str, Any] = await security.csrf_sweep(stack.app, http, db.engine, t)

    print({k: v for k, v in r.items() if k != "failures"})
    assert not r["uncovered"], r["uncovered"]
    assert r["refused_requests"] == r["forms"] * len(security.VARIANTS) - 1  # the header variant: not /login
    assert not r["failures"], "\n".join(r["failures"])
    assert sum(r["refusals"].values()) == r["refused_requests"]
