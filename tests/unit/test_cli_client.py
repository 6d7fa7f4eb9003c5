"""`frontdesk task …` / `frontdesk checkpoint …` against a scripted API (httpx.MockTransport)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from orchestrator.cli import client
from orchestrator.settings import Settings

TOKEN = "fd-secret-token-from-file"
API = "http://127.0.0.1:8123"

Responder = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """Answers by (method, path) from a queue of responses; the last one repeats. Records every request."""

    routes: dict[tuple[str, str], list[Responder]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *responses: Responder) -> None:
        self.routes[(method, path)] = list(responses)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            problem = {"title": "Not routed", "detail": request.url.path, "status": 404}
            return httpx.Response(404, json=problem)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(request) if callable(answer) else answer


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    api: FakeApi
    state_dir: Path
    capsys: pytest.CaptureFixture[str]
    sleeps: list[float]
    urls: list[str] = field(default_factory=list)

    def run(self, *argv: str) -> Result:
        parser = argparse.ArgumentParser(prog="frontdesk")
        client.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        code = args.func(args)
        captured = self.capsys.readouterr()
        for secret in (TOKEN, "cli-flag-token"):
            assert secret not in captured.out + captured.err, "the token must never be printed"
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    settings = Settings(
        _env_file=None, environment="development", state_dir=tmp_path, api_host="127.0.0.1", api_port=8123
    )
    (tmp_path / "cli-token").write_text(TOKEN + "\n")
    harness = Cli(api=FakeApi(), state_dir=tmp_path, capsys=capsys, sleeps=[])

    def build(url: str, token: str) -> client.ApiClient:
        harness.urls.append(url)
        return client.ApiClient(url, token, transport=httpx.MockTransport(harness.api.handler))

    monkeypatch.setattr(client, "get_settings", lambda: settings)
    monkeypatch.setattr(client, "build_client", build)
    monkeypatch.setattr(client, "_sleep", harness.sleeps.append)
    return harness


def task(status: str = "queued", **extra: object) -> dict:
    return {
        "id": "tsk_1",
        "workflow": "refund_request@1",
        "status": status,
        "outcome": None,
        "created_at": "2025-01-02T03:04:05.123456Z",
        "ended_at": None,
        "cost": {"total_usd": "0", "estimated": False, "model_calls": 0},
        **extra,
    }


def checkpoint(**extra: object) -> dict:
    return {
        "id": "chk_1",
        "task_id": "tsk_1",
        "tool": "refund.issue",
        "args": {"order_id": "A-1", "amount": 40},
        "args_digest": "abc",
        "status": "open",
        "rule": "approve: refund > 25",
        "policy_version": "v1",
        "requester_id": "usr_1",
        "created_at": "2025-01-02T03:04:06Z",
        "decided_by": None,
        "comment": None,
        **extra,
    }


def body(request: httpx.Request) -> dict:
    return json.loads(request.content)


# --- task submit ----------------------------------------------------------------------------------


def test_submit_sends_workflow_input_data_key_and_bearer_token(cli: Cli) -> None:
    cli.api.on("POST", "/api/tasks", httpx.Response(202, json=task()))

    result = cli.run(
        "task",
        "submit",
        "refund_request@1",
        "please refund A-1",
        "--data",
        '{"order_id": "A-1"}',
        "--idempotency-key",
        "key-7",
    )

    assert result.code == 0
    [request] = cli.api.requests
    assert (request.method, str(request.url)) == ("POST", f"{API}/api/tasks")
    assert body(request) == {
        "workflow": "refund_request@1",
        "input": "please refund A-1",
        "data": {"order_id": "A-1"},
    }
    assert request.headers["Idempotency-Key"] == "key-7"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.out.splitlines() == ["submitted tsk_1", "tsk_1  queued  cost $0"]


def test_submit_reads_stdin_and_reports_an_idempotent_replay(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("my parcel never arrived\n"))
    cli.api.on("POST", "/api/tasks", httpx.Response(200, json=task("completed")))

    result = cli.run("task", "submit", "refund_request", "-")

    assert result.code == 0
    [request] = cli.api.requests
    assert body(request) == {"workflow": "refund_request", "input": "my parcel never arrived"}
    assert "Idempotency-Key" not in request.headers
    assert "submitted tsk_1 (idempotent replay: existing task)" in result.out


@pytest.mark.parametrize(
    ("data", "message"),
    [("[1, 2]", "error: --data must be a JSON object"), ("{oops", "error: --data is not valid JSON")],
)
def test_submit_refuses_bad_data_before_calling_the_api(cli: Cli, data: str, message: str) -> None:
    result = cli.run("task", "submit", "refund_request", "hi", "--data", data)

    assert result.code == 2
    assert result.err.startswith(message)
    assert cli.api.requests == []


def test_submit_wait_prints_status_changes_until_waiting(cli: Cli) -> None:
    cli.api.on("POST", "/api/tasks", httpx.Response(202, json=task()))
    cli.api.on(
        "GET",
        "/api/tasks/tsk_1",
        httpx.Response(200, json=task("running")),
        httpx.Response(200, json=task("running")),
        httpx.Response(200, json=task("waiting")),
    )

    result = cli.run("task", "submit", "refund_request", "refund A-1", "--wait")

    assert result.code == 0
    assert result.out.splitlines() == [
        "submitted tsk_1",
        "tsk_1  queued",
        "  -> running",
        "  -> waiting",
        "tsk_1  waiting  cost $0",
        "waiting for a human decision: see `frontdesk checkpoint list`",
    ]
    assert [r.method for r in cli.api.requests] == ["POST", "GET", "GET", "GET"]
    assert cli.sleeps == [client.POLL_SECONDS, client.POLL_SECONDS]


def test_submit_wait_json_prints_only_the_final_task_on_stdout(cli: Cli) -> None:
    final = task("completed", outcome="resolved", output={"refund_id": "R-1"})
    cli.api.on("POST", "/api/tasks", httpx.Response(202, json=task()))
    cli.api.on("GET", "/api/tasks/tsk_1", httpx.Response(200, json=final))

    result = cli.run("task", "submit", "refund_request", "refund A-1", "--wait", "--json")

    assert result.code == 0
    assert json.loads(result.out) == final
    assert "  -> completed" in result.err.splitlines()


def test_submit_wait_times_out(cli: Cli) -> None:
    cli.api.on("POST", "/api/tasks", httpx.Response(202, json=task()))
    cli.api.on("GET", "/api/tasks/tsk_1", httpx.Response(200, json=task("running")))

    result = cli.run("task", "submit", "refund_request", "refund A-1", "--wait", "--timeout", "0")

    assert result.code == 1
    assert result.err == "error: timed out after 0 s waiting for task tsk_1 (status: running)\n"


# --- token and URL --------------------------------------------------------------------------------


def test_token_flag_and_url_flag_override_the_defaults(cli: Cli) -> None:
    cli.api.on("GET", "/api/tasks", httpx.Response(200, json={"items": [], "total": 0}))

    result = cli.run("task", "list", "--url", "http://api.example:9000/", "--token", "cli-flag-token")

    assert result.code == 0
    [request] = cli.api.requests
    assert str(request.url) == "http://api.example:9000/api/tasks?limit=20&offset=0"
    assert request.headers["Authorization"] == "Bearer cli-flag-token"


def test_missing_token_exits_2_without_calling_the_api(cli: Cli) -> None:
    (cli.state_dir / "cli-token").unlink()

    result = cli.run("checkpoint", "list")

    assert result.code == 2
    assert result.err == f"error: {client.NO_TOKEN}\n"
    assert "run `frontdesk dev`, which writes .frontdesk/cli-token" in result.err
    assert cli.api.requests == [] and cli.urls == []


def test_default_url_comes_from_settings() -> None:
    assert (
        client.default_url(Settings(_env_file=None, api_host="10.0.0.5", api_port=9)) == "http://10.0.0.5:9"
    )
    assert (
        client.default_url(Settings(_env_file=None, api_host="0.0.0.0", api_port=9)) == "http://127.0.0.1:9"
    )
    assert client.default_url(Settings(_env_file=None, api_host="::1", api_port=9)) == "http://[::1]:9"


# --- errors ---------------------------------------------------------------------------------------


def test_connection_refused_names_the_url(cli: Cli) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    cli.api.on("GET", "/api/tasks/tsk_1", refuse)

    result = cli.run("task", "show", "tsk_1")

    assert result.code == 1
    assert result.out == ""
    assert result.err == f"error: cannot reach the Frontdesk API at {API} — is it running? (make run)\n"


def test_conflict_problem_is_printed_as_title_and_detail(cli: Cli) -> None:
    problem = {"title": "Checkpoint already decided", "detail": "chk_1 was approved by alice", "status": 409}
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(409, json=problem))

    result = cli.run("checkpoint", "reject", "chk_1")

    assert result.code == 1
    assert result.out == ""
    assert result.err == "error: Checkpoint already decided: chk_1 was approved by alice\n"
    assert body(cli.api.requests[0]) == {"decision": "reject", "comment": ""}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(404, json={"detail": "Not Found"}), "error: Not Found\n"),
        (httpx.Response(500, text="boom\n"), "error: Internal Server Error: boom\n"),
        (
            httpx.Response(422, json={"detail": [{"loc": ["body", "input"], "msg": "required"}]}),
            'error: Unprocessable Entity: [{"loc": ["body", "input"], "msg": "required"}]\n',
        ),
    ],
)
def test_errors_without_a_problem_body_still_print_one_line(
    cli: Cli, response: httpx.Response, expected: str
) -> None:
    cli.api.on("POST", "/api/tasks/tsk_1/cancel", response)

    result = cli.run("task", "cancel", "tsk_1")

    assert (result.code, result.err) == (1, expected)


# --- task show / list / cancel --------------------------------------------------------------------


DETAIL = task(
    "completed",
    outcome="resolved",
    input="Please refund order A-1",
    output={"refund_id": "R-1", "amount": 40},
    error=None,
    requester_id="usr_1",
    ended_at="2025-01-02T03:05:00Z",
    cost={"total_usd": "0.0123", "estimated": True, "model_calls": 3},
    steps=[
        {"index": 0, "name": "triage", "agent": "triager", "status": "completed", "error": None},
        {"index": 1, "name": "resolve", "agent": "resolver", "status": "completed", "error": None},
    ],
    model_calls=[
        {
            "step": "triage",
            "turn": 1,
            "attempt": 1,
            "tier": "tier-small",
            "model_served": "demo-small",
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "cached_tokens": 0,
            "cost_usd": "0.0003",
            "latency_ms": 41.5,
            "ok": True,
            "error": None,
        }
    ],
    tool_calls=[
        {
            "id": "tc_1",
            "step": "resolve",
            "turn": 2,
            "tool": "refund.issue",
            "args": {"order_id": "A-1"},
            "effect": "approve",
            "rule": "approve: refund > 25",
            "status": "succeeded",
            "policy_version": "v1",
            "error": None,
        }
    ],
    checkpoints=[
        {
            "id": "chk_1",
            "tool": "refund.issue",
            "args": {"order_id": "A-1"},
            "status": "approved",
            "rule": "approve: refund > 25",
            "decided_by": "alice",
            "decided_at": "2025-01-02T03:04:30Z",
            "comment": "fine",
            "created_at": "2025-01-02T03:04:10Z",
        }
    ],
)


def test_task_show_prints_the_human_view(cli: Cli) -> None:
    cli.api.on("GET", "/api/tasks/tsk_1", httpx.Response(200, json=DETAIL))

    result = cli.run("task", "show", "tsk_1")

    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "Task tsk_1  refund_request@1"
    assert "  status     completed (resolved)" in lines
    assert "  cost       $0.0123 (estimated) over 3 model call(s)" in lines
    assert "  ended      2025-01-02 03:05:00" in lines

    def row(first: str) -> list[str]:
        return next(line.split() for line in lines if line.split()[:1] == [first])

    assert row("1") == ["1", "resolve", "resolver", "completed", "-"]
    assert row("triage")[3:10] == ["tier-small", "demo-small", "120", "30", "0", "0.0003", "41.5"]
    tool_line = next(line for line in lines if "refund.issue" in line and "succeeded" in line)
    assert tool_line.split()[:4] == ["resolve", "2", "refund.issue", "approve"]
    assert "approve: refund > 25" in tool_line and '{"order_id": "A-1"}' in tool_line
    assert row("chk_1")[-4:] == ["alice", "2025-01-02", "03:04:30", "fine"]
    assert result.out.endswith('\nOutput\n{\n  "refund_id": "R-1",\n  "amount": 40\n}\n')


def test_task_show_json_and_path_escaping(cli: Cli) -> None:
    cli.api.on("GET", "/api/tasks/a/b", httpx.Response(200, json=DETAIL))  # must NOT be hit
    cli.api.on("GET", "/api/tasks/a%2Fb", httpx.Response(200, json=DETAIL))

    result = cli.run("task", "show", "a/b", "--json")

    assert result.code == 0
    assert json.loads(result.out) == DETAIL
    assert cli.api.requests[0].url.raw_path == b"/api/tasks/a%2Fb"


def test_task_list_sends_filters_and_prints_a_table(cli: Cli) -> None:
    item = task(
        "completed", outcome="resolved", cost={"total_usd": "0.0123"}, ended_at="2025-01-02T03:05:00Z"
    )
    cli.api.on("GET", "/api/tasks", httpx.Response(200, json={"items": [item], "total": 7}))

    result = cli.run("task", "list", "--status", "completed", "--limit", "5")

    assert result.code == 0
    assert dict(cli.api.requests[0].url.params) == {"status": "completed", "limit": "5", "offset": "0"}
    header, line, footer = result.out.splitlines()
    assert header.split() == ["ID", "WORKFLOW", "STATUS", "OUTCOME", "COST", "CREATED", "ENDED"]
    assert line.split() == [
        "tsk_1",
        "refund_request@1",
        "completed",
        "resolved",
        "$0.0123",
        "2025-01-02",
        "03:04:05",
        "2025-01-02",
        "03:05:00",
    ]
    assert footer == "1 of 7 task(s)"


def test_task_cancel_posts_and_reports(cli: Cli) -> None:
    cli.api.on("POST", "/api/tasks/tsk_1/cancel", httpx.Response(202, json=task("running")))

    result = cli.run("task", "cancel", "tsk_1")

    assert result.code == 0
    assert [(r.method, r.url.path) for r in cli.api.requests] == [("POST", "/api/tasks/tsk_1/cancel")]
    assert result.out == "cancel requested for tsk_1 (status: running)\n"


# --- checkpoints ----------------------------------------------------------------------------------


def test_checkpoint_list_defaults_to_open_and_prints_a_table(cli: Cli) -> None:
    cli.api.on(
        "GET",
        "/api/checkpoints",
        httpx.Response(200, json={"items": [checkpoint()]}),
        httpx.Response(200, json={"items": []}),
    )

    result = cli.run("checkpoint", "list")
    empty = cli.run("checkpoint", "list", "--status", "approved")

    assert [dict(r.url.params) for r in cli.api.requests] == [{"status": "open"}, {"status": "approved"}]
    header, line = result.out.splitlines()
    assert header.split()[:4] == ["ID", "TASK", "TOOL", "STATUS"]
    assert line.startswith("chk_1  tsk_1  refund.issue  open")
    assert "approve: refund > 25" in line and '{"order_id": "A-1", "amount": 40}' in line
    assert empty.out == "no approved checkpoints\n"


def test_checkpoint_list_json(cli: Cli) -> None:
    page = {"items": [checkpoint()]}
    cli.api.on("GET", "/api/checkpoints", httpx.Response(200, json=page))

    result = cli.run("checkpoint", "list", "--json")

    assert (result.code, json.loads(result.out)) == (0, page)


def test_checkpoint_approve_sends_the_decision_and_comment(cli: Cli) -> None:
    decided = checkpoint(status="approved", decided_by="usr_2", comment="ok by me")
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(200, json=decided))

    result = cli.run("checkpoint", "approve", "chk_1", "--comment", "ok by me")

    assert result.code == 0
    [request] = cli.api.requests
    assert body(request) == {"decision": "approve", "comment": "ok by me"}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.out == "approved chk_1: refund.issue on task tsk_1 (status: approved)\n"


def test_a_group_without_a_command_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.run("checkpoint")

    assert exit_info.value.code == 2
    assert cli.api.requests == []
