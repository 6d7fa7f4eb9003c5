"""Templates: jinja2 with autoescape, one context processor for the person and the navigation."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.routing import NoMatchFound

from orchestrator.models import as_utc
from orchestrator.resources import TEMPLATES_DIR
from orchestrator.services.access import can
from orchestrator.web.upstream import UpstreamProbe
from orchestrator.web.waterfall import duration_text

# (label, url name, object, action): shown to whoever the policy engine allows.
NAV: list[tuple[str, str, str, str]] = [
    ("New task", "web_task_new", "task", "submit"),
    ("Tasks", "web_tasks", "task", "read_own"),
    ("Tasks", "web_tasks", "task", "read_all"),
    ("Inbox", "web_inbox", "checkpoint", "decide"),
    ("Decisions", "web_decisions", "checkpoint", "decide"),
    ("Catalog", "web_catalog", "catalog", "read"),
    ("Cost", "web_cost", "cost", "read"),
    ("Audit", "web_audit", "audit", "read"),
    ("Budgets", "web_admin_budgets", "budget", "read"),
    ("Switches", "web_admin_switches", "switch", "read"),
    ("Policies", "web_admin_policies", "policy", "read"),
    ("Users", "web_admin_users", "user", "read"),
]


def _upstream(request: Request) -> UpstreamProbe:
    """The app's probe of the router's upstream (made on first use: tests build apps by the dozen)."""
    probe: UpstreamProbe | None = getattr(request.app.state, "router_upstream", None)
    if probe is None:
        settings = request.app.state.frontdesk.settings
        probe = UpstreamProbe(settings.router_url, settings.router_api_key)
        request.app.state.router_upstream = probe
    return probe


def _context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "web_user", None)
    state = request.app.state.frontdesk
    nav: list[tuple[str, str]] = []
    if user is not None:
        seen: set[str] = set()
        for label, name, obj, act in NAV:
            if name not in seen and can(state, user.principal, obj, act):
                try:
                    path = request.app.url_path_for(name)
                except NoMatchFound:
                    continue  # a page this build does not serve
                seen.add(name)
                nav.append((label, str(path)))
    here = request.url.path
    matching = [p for _, p in nav if here == p or here.startswith(p.rstrip("/") + "/")]
    current = max(matching, key=len) if matching else None  # /tasks/new is New task, not Tasks
    return {
        "nav_current": current,
        "me": user,
        "csrf": user.csrf if user else "",
        "nav": nav,
        "router_url": state.settings.router_url,
        "development": state.settings.environment != "production",  # hints that only fit the dev stack
        "simulated_upstream": _upstream(request).simulated(),  # the demo-model banner
        "can": (lambda obj, act: user is not None and can(state, user.principal, obj, act)),
    }


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_context])


def _money(value: Any, places: int = 4) -> str:
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    return f"${amount:,.{places}f}"


def _when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return as_utc(value).isoformat()


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates.env.filters.update(money=_money, when=_when, iso=_iso, pretty=_pretty, duration=duration_text)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context or {}, status_code=status)
