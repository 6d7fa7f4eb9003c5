"""GET /metrics: the API process's metrics in the Prometheus text format.

Who may read it is a setting (docs/observability.md): FRONTDESK_METRICS_PUBLIC serves it to
anyone; FRONTDESK_METRICS_TOKEN asks for `Authorization: Bearer <token>`; with neither it is not
there (404). It carries counts, durations, tokens and costs by tier, model, tool, rule and status:
no tenant's data, no secret.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from orchestrator import metrics
from orchestrator.settings import Settings


def router(settings: Settings) -> APIRouter:
    routes = APIRouter()
    token = settings.metrics_token.get_secret_value()

    @routes.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        text = metrics.prometheus_text()
        if text is None or not (settings.metrics_public or token):
            return PlainTextResponse(
                "metrics are off: set FRONTDESK_METRICS_TOKEN or FRONTDESK_METRICS_PUBLIC\n", status_code=404
            )
        if not settings.metrics_public:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse(
                    "send the metrics token: Authorization: Bearer <FRONTDESK_METRICS_TOKEN>\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(text, media_type=metrics.PROMETHEUS_CONTENT_TYPE)

    return routes
