"""Without the sample catalog the API and the pages still work (nothing to run, and they say so);
the demo-model banner shows only while the router says its upstream is the demo model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SeededDb, stack_settings

from orchestrator.app import build_state, create_app
from orchestrator.web.upstream import UpstreamProbe
from webui.conftest import sign_in

BANNER = 'class="demo-banner"'


@pytest.fixture
async def empty_app(sqlite_db: SeededDb, tmp_path: Path) -> AsyncIterator[Any]:
    settings = stack_settings(sqlite_db, "http://127.0.0.1:9", tmp_path, catalog_packages=[])
    yield create_app(settings, state=build_state(settings, engine=sqlite_db.engine))


async def test_the_api_starts_with_an_empty_catalog_and_says_nothing_is_registered(
    empty_app: Any, sqlite_db: SeededDb
) -> None:
    auth = {"Authorization": f"Bearer {sqlite_db.tokens['riley']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=empty_app), base_url="http://t") as api:
        for path in ("/api/workflows", "/api/agents", "/api/tools"):
            listed = await api.get(path, headers={"Authorization": f"Bearer {sqlite_db.tokens['dana']}"})
            assert (listed.status_code, listed.json()) == (200, []), path
        for path in ("/api/tasks", "/api/tasks/preview"):
            r = await api.post(path, json={"input": "Refund order ORD-1001, please."}, headers=auth)
            assert r.status_code == 422, r.text
            problem = r.json()
            assert problem["title"] == "No workflow registered"
            assert "FRONTDESK_CATALOG_PACKAGES" in problem["detail"]
        named = await api.post("/api/tasks", json={"workflow": "refund_request", "input": "x"}, headers=auth)
        assert named.status_code == 422 and "refund_request" in named.json()["detail"]


async def test_the_pages_render_with_an_empty_catalog(empty_app: Any, sqlite_db: SeededDb) -> None:
    dana = await sign_in(empty_app, sqlite_db, "dana")
    catalog = await dana.get("/catalog")
    assert catalog.status_code == 200 and "No workflows registered yet" in catalog.text
    riley = await sign_in(empty_app, sqlite_db, "riley")
    assert (await riley.get("/tasks/new")).status_code == 200
    for b in (dana, riley):
        await b.client.aclose()


MODEL_INFO = {
    "data": [
        {"model_name": "tier-frontier", "litellm_params": {"model": "openai/demo-frontier", "api_base": "x"}},
        {"model_name": "tier-slm", "litellm_params": {"model": "openai/demo-slm", "api_base": "x"}},
    ]
}


def router(info: dict[str, Any]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=json.dumps(info)))


async def test_the_banner_follows_what_the_router_says(web_app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="https://t") as client:
        # The fixture's router does not answer: no banner, and the page does not wait for it.
        assert BANNER not in (await client.get("/login")).text
        web_app.state.router_upstream.wait(5)
        assert BANNER not in (await client.get("/login")).text

        web_app.state.router_upstream = UpstreamProbe("http://router", "k", transport=router(MODEL_INFO))
        first = await client.get("/login")  # starts the probe; the answer is not known yet
        assert BANNER not in first.text
        web_app.state.router_upstream.wait(5)
        assert BANNER in (await client.get("/login")).text

        real = {"data": [{"model_name": "tier-frontier", "litellm_params": {"model": "openai/gpt-4o"}}]}
        web_app.state.router_upstream = UpstreamProbe("http://router", "k", transport=router(real))
        await client.get("/login")
        web_app.state.router_upstream.wait(5)
        assert BANNER not in (await client.get("/login")).text
