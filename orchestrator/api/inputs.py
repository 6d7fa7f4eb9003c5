"""Input limits every route shares, checked at the edge before any route or database sees them.

- `RefuseNul`: no text may carry a NUL character (U+0000). PostgreSQL cannot store one in a text
  column, so without this check such input reached the database and failed there (a 500, or a
  checkpoint record retried for minutes). One check covers the path, the query string, JSON bodies
  and form bodies, on the API and the pages alike; it answers 422 with what to do.
  Multipart bodies are left to their parsers: an attachment's bytes are judged by the attachment
  service, which names the file it refuses.
The pages' answer comes from a renderer the app passes in (the API never imports the web edge).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.api.errors import problem
from orchestrator.services.limits import has_nul

NUL_DETAIL = (
    "The request contains a NUL character (U+0000, sent as \\u0000 or %00) in {where}. "
    "Text cannot contain it: remove it and send the request again."
)


def _query_has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw.lower()


def _body_nul(content_type: bytes, body: bytes) -> bool:
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        return _query_has_nul(body)
    if b"json" in content_type:
        if b"\x00" in body:
            return True
        if b"\\u0000" not in body:
            return False  # the cheap test: a NUL in JSON text is always written as \u0000
        try:
            # strict=False: a raw control character is the JSON parser's 400, not this check's
            return has_nul(json.loads(body, strict=False))
        except (ValueError, RecursionError):
            return False  # not JSON at all: the route answers that
    return False


class RefuseNul:
    """ASGI middleware: 422 for a NUL character in the path, the query or a JSON or form body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        is_page: Callable[[str], bool] = lambda path: False,
        page: Callable[[int, str, str], Response] | None = None,
    ) -> None:
        self.app, self.is_page, self.page = app, is_page, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or "%00" in scope.get("raw_path", b"").decode("latin-1").lower():
            await self._refuse(scope, receive, send, "the URL path")
            return
        if _query_has_nul(scope.get("query_string", b"")):
            await self._refuse(scope, receive, send, "the query string")
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or not (
            b"json" in content_type or content_type.startswith(b"application/x-www-form-urlencoded")
        ):
            await self.app(scope, receive, send)
            return
        # Bodies are small and already buffered by the body limit in front of this middleware.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _body_nul(content_type, body):
            await self._refuse(scope, receive, send, "the request body")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, where: str) -> None:
        detail = NUL_DETAIL.format(where=where)
        if self.page is not None and self.is_page(scope["path"]):
            response = self.page(422, "Invalid characters", detail)
        else:
            response = problem(422, "Invalid request", detail)
        await response(scope, receive, send)
