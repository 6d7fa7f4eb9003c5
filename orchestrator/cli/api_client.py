"""The HTTP client of the Frontdesk REST API, shared by every command that talks to it.

Every such command sends a bearer token: `--token`, else the file `<state_dir>/cli-token` that
`frontdesk dev` writes. The token is never printed. A refused or failed request becomes a
:class:`CliError` (`<title>: <detail>` of the RFC 7807 problem), exit code 1; a missing token
exit code 2.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator.settings import Settings, get_settings

TOKEN_FILE = "cli-token"
NO_TOKEN = "no API token: pass --token or run `frontdesk dev`, which writes .frontdesk/cli-token"


class CliError(Exception):
    """Printed as `error: <message>` on stderr; `code` is the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _problem(response: httpx.Response) -> CliError:
    """Turn an RFC 7807 problem (or any error response) into `<title>: <detail>`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    title = str(body.get("title") or response.reason_phrase or f"HTTP {response.status_code}")
    detail = body.get("detail")
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False)
    if not body and response.text:
        detail = response.text.strip()[:300]
    return CliError(f"{title}: {detail}" if detail and detail != title else title)


class ApiClient:
    """A thin wrapper of `httpx.Client` for the Frontdesk REST API; raises `CliError` on failure."""

    def __init__(self, base_url: str, token: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=transport, timeout=30.0)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            where = self.base_url
            raise CliError(f"cannot reach the Frontdesk API at {where} — is it running? (make run)") from exc
        except httpx.TransportError as exc:  # timeouts, protocol errors
            raise CliError(f"request to the Frontdesk API at {self.base_url} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"the API at {self.base_url} answered {method} {path} with non-JSON") from exc

    def _object(self, method: str, path: str, **kwargs: Any) -> dict:
        """`json` for the routes that answer a JSON object."""
        answer: dict = self.json(method, path, **kwargs)
        return answer

    # -- tasks ------------------------------------------------------------------------------------
    def submit_task(
        self, workflow: str, text: str, data: dict | None, key: str | None, budget: Decimal | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"workflow": workflow, "input": text}
        if data is not None:
            body["data"] = data
        if budget is not None:
            body["budget_usd"] = str(budget)
        headers = {"Idempotency-Key": key} if key else {}
        return self.request("POST", "/api/tasks", json=body, headers=headers)

    def preview_task(self, workflow: str | None, text: str, budget: Decimal | None) -> dict:
        body: dict[str, Any] = {"input": text}
        if workflow:
            body["workflow"] = workflow
        if budget is not None:
            body["budget_usd"] = str(budget)
        preview: dict = self.request("POST", "/api/tasks/preview", json=body).json()
        return preview

    def list_tasks(self, status: str | None, limit: int, offset: int) -> dict:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return self._object("GET", "/api/tasks", params=params)

    def get_task(self, task_id: str) -> dict:
        return self._object("GET", f"/api/tasks/{quote(task_id, safe='')}")

    def cancel_task(self, task_id: str) -> dict:
        return self._object("POST", f"/api/tasks/{quote(task_id, safe='')}/cancel")

    # -- checkpoints ------------------------------------------------------------------------------
    def list_checkpoints(self, status: str | None, mine: bool = False) -> dict:
        params: dict[str, Any] = {"status": status} if status else {}
        if mine:
            params["mine"] = "true"
        return self._object("GET", "/api/checkpoints", params=params)

    def get_checkpoint(self, checkpoint_id: str) -> dict:
        return self._object("GET", _checkpoint_path(checkpoint_id))

    def decide(
        self, checkpoint_id: str, decision: str, comment: str, edited_args: dict | None = None
    ) -> dict:
        body: dict[str, Any] = {"decision": decision, "comment": comment}
        if edited_args is not None:
            body["edited_args"] = edited_args
        return self._object("POST", _checkpoint_path(checkpoint_id, "decision"), json=body)

    def reassign(
        self, checkpoint_id: str, role: str | None, approvers: list[str] | None, comment: str
    ) -> dict:
        body: dict[str, Any] = {"comment": comment}
        if role is not None:
            body["assignee_role"] = role
        if approvers is not None:
            body["named_approvers"] = approvers
        return self._object("POST", _checkpoint_path(checkpoint_id, "reassign"), json=body)

    def add_comment(self, checkpoint_id: str, text: str) -> dict:
        return self._object("POST", _checkpoint_path(checkpoint_id, "comments"), json={"body": text})


def _checkpoint_path(checkpoint_id: str, action: str = "") -> str:
    path = f"/api/checkpoints/{quote(checkpoint_id, safe='')}"
    return f"{path}/{action}" if action else path


def build_client(url: str, token: str) -> ApiClient:
    """The one place commands get a client (tests replace it to inject an `httpx.MockTransport`)."""
    return ApiClient(url, token)


def default_url(settings: Settings) -> str:
    host = settings.api_host if settings.api_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://[{host}]:{settings.api_port}" if ":" in host else f"http://{host}:{settings.api_port}"


def read_token(state_dir: Path) -> str:
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip() if path.is_file() else ""
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", code=2) from exc
    if not token:
        raise CliError(NO_TOKEN, code=2)
    return token


def connect(args: argparse.Namespace) -> ApiClient:
    """A client for the `--url` and `--token` of a command (else the settings and the token file)."""
    settings = get_settings()
    token = args.token or read_token(settings.state_dir)
    return build_client(args.url or default_url(settings), token)
