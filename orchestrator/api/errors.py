"""The API's answers to errors, as problem objects (RFC 9457 style).

The services raise `orchestrator.errors.ServiceError` and its kinds (re-exported here for the
routes); this module turns them, request validation errors and anything unexpected into problem
JSON, or into the web UI's error page for people. Every error a person sees says what went wrong and what to do; no stack trace ever leaves the
process (unexpected errors are logged with a reference id that the response carries).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "ServiceError",
    "ServiceUnavailable",
    "Unprocessable",
    "install",
    "problem",
]

log = logging.getLogger(__name__)


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
        return answer(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
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
