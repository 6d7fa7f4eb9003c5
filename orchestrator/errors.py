"""Errors the services raise; the HTTP edges translate them into answers a person can act on.

    ServiceError             base: status, title, detail
    ├── NotFound             404 (also used for other tenants' ids: never reveal they exist)
    ├── Forbidden            403
    ├── Conflict             409
    ├── Unprocessable        422 (well-formed, but cannot be done as asked)
    ├── PayloadTooLarge      413
    └── ServiceUnavailable   503

Each carries the HTTP status it maps to, so the edges (`api/errors.py` for problem JSON, the web
UI's error page) need no table of their own. The detail says what went wrong and what to do.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, title: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if title:
            self.title = title
        self.extra = extra or {}


class NotFound(ServiceError):
    status, title = 404, "Not found"


class Forbidden(ServiceError):
    status, title = 403, "Forbidden"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class Unprocessable(ServiceError):
    status, title = 422, "Invalid request"


class PayloadTooLarge(ServiceError):
    status, title = 413, "Payload too large"


class ServiceUnavailable(ServiceError):
    status, title = 503, "Service unavailable"
