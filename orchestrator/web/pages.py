"""The web edge put together: page routers, static files, security headers and error pages.

Pages sign in with a session cookie; the API keeps bearer tokens.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.resources import STATIC_DIR
from orchestrator.web import admin, audit, auth, catalog, cost, evidence, inbox, tasks
from orchestrator.web.render import render

NOT_PAGES = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/static/")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def is_page(request: Request) -> bool:
    return is_page_path(request.url.path)


def is_page_path(path: str) -> bool:
    return not path.startswith(NOT_PAGES)


def too_large_page(limit: int) -> Response:
    """413 for a page form (the body limit answers before the app, so no template is at hand)."""
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Too large · Frontdesk</title>"
        "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main id=\"main\">"
        "<section class=\"card error-page\" role=\"alert\"><h1>The form is too large</h1>"
        f"<p>What you sent is over {limit // 1024} KiB. Shorten the request or attach a smaller "
        "text file (attachments: 32 KiB at most).</p><p>Use your browser's Back button to return to the form, or go to <a href=\"/\">the start page</a>.</p>"
        "</section></main></body></html>"
    )
    return Response(body, status_code=413, media_type="text/html")


def refused_page(status: int, title: str, detail: str) -> Response:
    """A refusal before the app (the input checks in front of it), so no template is at hand."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · Frontdesk</title>"
        '<link rel="stylesheet" href="/static/app.css"></head><body><main id="main">'
        f'<section class="card error-page" role="alert"><h1>{escape(title)}</h1>'
        f"<p>{escape(detail)}</p><p>Use your browser's Back button to return to the form, or go to "
        '<a href="/">the start page</a>.</p></section></main></body></html>'
    )
    return Response(body, status_code=status, media_type="text/html")


def error_page(request: Request, status: int, title: str, detail: str, extra: dict[str, Any]) -> Response | None:
    """People get an HTML page (never a stack trace); a request that needs a session is sent to sign in."""
    if not is_page(request):
        return None
    if status == 401:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", 303)
    context = {"status": status, "title": title, "detail": detail, "reference": extra.get("reference")}
    return render(request, "error.html", context, status)


class SecurityHeaders:
    """CSP (no inline script or style anywhere), no framing, no sniffing, no referrer leaks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"x-frame-options": b"DENY",
                }
                if not scope["path"].startswith(("/docs", "/redoc")):  # Swagger UI needs its CDN script
                    extra[b"content-security-policy"] = CSP.encode()
                headers += [(k, v) for k, v in extra.items() if k not in names]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    # Counted in the database, so every API process sees the same failed sign-ins.
    app.state.login_throttle = auth.LoginThrottle(app.state.frontdesk.engine)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (auth, tasks, evidence, inbox, catalog, admin, cost, audit):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)
