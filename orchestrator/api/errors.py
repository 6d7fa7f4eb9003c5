"""The API's answers to errors, as problem objects (RFC 9457 style).

The services raise `orchestrator.errors.ServiceError` and its kinds (re-exported here for the
routes); this module turns them, request validation errors and anything unexpected into problem
JSON, or into the web UI's error page for people. Every error a person sees says what went wrong and what to do; no stack trace ever leaves the
process (unexpected errors are logged with a reference id that the response carries).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    ServiceUnavailable,
    Unprocessable,
)

__all__ = [
    "PROBLEMS",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "ServiceError",
    "ServiceUnavailable",
    "Unprocessable",
    "install",
    "problem",
]

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details); some kinds add fields, e.g. `reference`."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    status: int
    title: str
    detail: str


def _declared(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# The error answers every API route may give, declared on each router so the OpenAPI is honest
# about them (422 here also replaces FastAPI's own validation-error schema, which we never send).
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _declared("Malformed JSON, or a body nested too deeply to read."),
    401: _declared("No bearer token, or an invalid or revoked one."),
    403: _declared("Your roles do not allow this."),
    404: _declared("No such resource in your tenant."),
    409: _declared("The resource's state refuses the request (e.g. a checkpoint already decided)."),
    413: _declared("The request body is over the limit (64 KiB by default)."),
    422: _declared(
        "Invalid input: a field out of its range or pattern, structured input nested over 32 levels, "
        "or a NUL character (U+0000) anywhere in the path, query or body."
    ),
    500: _declared("An error on our side; the answer carries a reference to quote."),
    503: _declared("Temporal or the database is unreachable; try again shortly."),
}


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        msg = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        return 400, "Malformed JSON", f"The request body is not valid JSON ({msg}). Send a JSON object."
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return 422, "Invalid request", "; ".join(parts)


# (request, status, title, detail, extra) -> a response for people (the web UI's error page), or
# None when the request is not for a page (the REST API answers problem JSON).
PageRenderer = Callable[[Request, int, str, str, dict[str, Any]], Response | None]


def install(app: FastAPI, pages: PageRenderer | None = None) -> None:
    def answer(
        request: Request,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        page = pages(request, status, title, detail, extra) if pages is not None else None
        if page is not None:
            page.headers.update(headers or {})
            return page
        return problem(status, title, detail, headers=headers, **extra)

    @app.exception_handler(ServiceError)
    async def _api_error(request: Request, exc: ServiceError) -> Response:
        return answer(request, exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, title, detail = _validation_detail(exc)
        return answer(request, status, title, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {401: "Unauthorized", 404: "Not found", 405: "Method not allowed"}
        # Keep the exception's headers: a 405 names the methods it allows (`Allow`).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return answer(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=headers,
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        # JSON nested thousands of levels deep exhausts the parser's stack before any model sees it.
        return answer(
            request, 400, "Nested too deeply", "The request body nests too deeply to read; flatten it."
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(6)
        log.error("unexpected error ref=%s", ref, exc_info=exc)
        return answer(
            request,
            500,
            "Internal error",
            f"Something went wrong on our side (reference {ref}).",
            reference=ref,
        )

    app.add_middleware(AnswerUnexpected, answer=_unexpected)


def _allowed_methods(request: Request) -> str:
    """Every method the path is served with. Starlette's 405 names only the methods of the first
    route matching the path, while GET and POST of /api/tasks (say) are two routes. A path that is
    a route's own (/api/tasks/preview) is that resource, not also a value of /api/tasks/{task_id}."""
    path = request.scope["path"]
    matched = [
        route
        for route in iter_route_contexts(request.app.routes)
        if route.methods and getattr(route, "path_regex", None) is not None and route.path_regex.match(path)
    ]
    exact = [route for route in matched if route.path == path]
    return ", ".join(sorted({m for route in exact or matched for m in route.methods or ()}))


class AnswerUnexpected:
    """ASGI middleware: an unexpected error is answered here and goes no further.

    Starlette's outermost handler answers too, but then re-raises to the server, which closes the
    keep-alive connection: every 500 would cost the client its connection. Errors after the
    response has started cannot be answered, and still go up.
    """

    def __init__(self, app: ASGIApp, answer: Callable[[Request, Exception], Awaitable[Response]]) -> None:
        self.app, self.answer = app, answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            response = await self.answer(Request(scope, receive), exc)
            await response(scope, receive, send)
