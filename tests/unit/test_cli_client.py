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

from orchestrator.cli import api_client, checkpoint_cmd, task_cmd
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
        commands = parser.add_subparsers(dest="command", required=True)
        task_cmd.register(commands)
        checkpoint_cmd.register(commands)
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

    def build(url: str, token: str) -> api_client.ApiClient:
        harness.urls.append(url)
        return api_client.ApiClient(url, token, transport=httpx.MockTransport(harness.api.handler))

    monkeypatch.setattr(api_client, "get_settings", lambda: settings)
    monkeypatch.setattr(api_client, "build_client", build)
    monkeypatch.setattr(task_cmd, "_sleep", harness.sleeps.append)
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
    assert cli.sleeps == [task_cmd.POLL_SECONDS, task_cmd.POLL_SECONDS]


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
    assert result.err == f"error: {api_client.NO_TOKEN}\n"
    assert "run `frontdesk dev`, which writes .frontdesk/cli-token" in result.err
    assert cli.api.requests == [] and cli.urls == []


def test_default_url_comes_from_settings() -> None:
    assert (
        api_client.default_url(Settings(_env_file=None, api_host="10.0.0.5", api_port=9))
        == "http://10.0.0.5:9"
    )
    assert (
        api_client.default_url(Settings(_env_file=None, api_host="0.0.0.0", api_port=9))
        == "http://127.0.0.1:9"
    )
    assert api_client.default_url(Settings(_env_file=None, api_host="::1", api_port=9)) == "http://[::1]:9"


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


# --- checkpoint show ------------------------------------------------------------------------------


CHECKPOINT_DETAIL = checkpoint(
    kind="tool_approval",
    step="resolve",
    reason="refunds over 25 USD need a second pair of eyes",
    rule_id="refund_large",
    assignee_role="approver",
    extra_roles=["admin"],
    named_approvers=["bob@example.com"],
    approvers_required=2,
    escalation_level=1,
    due_at="2025-01-02T04:04:06Z",
    edited_args=None,
    edit_diff=None,
    decided_at=None,
    sla=[
        {"after_seconds": 3600, "add_roles": ["admin"], "action": "escalate"},
        {"after_seconds": 86400, "add_roles": [], "action": "auto_reject"},
    ],
    decisions=[
        {
            "decider_id": "usr_2",
            "decision": "approve",
            "round": 1,
            "comment": "looks right",
            "edited_args": None,
            "created_at": "2025-01-02T03:10:00Z",
        }
    ],
    comments=[{"author_id": "usr_1", "body": "customer is waiting", "created_at": "2025-01-02T03:05:00Z"}],
)


def test_checkpoint_show_prints_the_call_why_who_and_history(cli: Cli) -> None:
    cli.api.on("GET", "/api/checkpoints/chk_1", httpx.Response(200, json=CHECKPOINT_DETAIL))

    result = cli.run("checkpoint", "show", "chk_1")

    assert result.code == 0
    assert [(r.method, r.url.path) for r in cli.api.requests] == [("GET", "/api/checkpoints/chk_1")]
    lines = result.out.splitlines()
    assert lines[0] == "Checkpoint chk_1  tool_approval  open"
    assert "  task       tsk_1" in lines
    tool = lines.index("Tool call")
    assert lines[tool + 1 : tool + 6] == [
        "  refund.issue",
        "  {",
        '    "order_id": "A-1",',
        '    "amount": 40',
        "  }",
    ]
    assert "  reason     refunds over 25 USD need a second pair of eyes" in lines
    assert "  rule       approve: refund > 25 (refund_large)" in lines
    assert "  roles      approver, admin" in lines
    assert "  named      bob@example.com" in lines
    assert "  required   2 approval(s)" in lines
    assert "  due        2025-01-02 04:04:06 (escalation level 1)" in lines
    assert "  sla        after 1h: escalate (+admin); after 1d: auto_reject" in lines
    decisions = lines.index("Decisions")
    assert lines[decisions + 1].split() == ["WHEN", "BY", "DECISION", "ROUND", "COMMENT", "EDITED"]
    assert lines[decisions + 2].split() == [
        "2025-01-02",
        "03:10:00",
        "usr_2",
        "approve",
        "1",
        "looks",
        "right",
        "-",
    ]
    assert lines[-2:] == ["Comments", "  2025-01-02 03:05:00  usr_1: customer is waiting"]


def test_checkpoint_show_prints_edits_and_the_decision(cli: Cli) -> None:
    decided = {
        **CHECKPOINT_DETAIL,
        "status": "approved",
        "due_at": None,
        "escalation_level": 0,
        "edited_args": {"order_id": "A-1", "amount": 25},
        "edit_diff": {"amount": {"from": 40, "to": 25}},
        "decided_by": "usr_3",
        "decided_at": "2025-01-02T03:20:00Z",
        "comment": "capped at 25",
        "decisions": [],
        "comments": [],
    }
    cli.api.on("GET", "/api/checkpoints/chk_1", httpx.Response(200, json=decided))

    result = cli.run("checkpoint", "show", "chk_1")

    assert result.code == 0
    lines = result.out.splitlines()
    assert "  edited to" in lines and "  changes" in lines
    assert "    amount: 40 -> 25" in lines
    assert "  due        no deadline" in lines
    assert "  decided    by usr_3 at 2025-01-02 03:20:00" in lines
    assert "  comment    capped at 25" in lines
    assert "Decisions" not in lines and "Comments" not in lines


def test_checkpoint_show_json_and_path_escaping(cli: Cli) -> None:
    cli.api.on(
        "GET", "/api/checkpoints/a/b", httpx.Response(200, json=CHECKPOINT_DETAIL)
    )  # url.path is decoded

    result = cli.run("checkpoint", "show", "a/b", "--json")

    assert (result.code, json.loads(result.out)) == (0, CHECKPOINT_DETAIL)
    assert cli.api.requests[0].url.raw_path == b"/api/checkpoints/a%2Fb"


# --- checkpoint list --mine -----------------------------------------------------------------------


def test_checkpoint_list_mine_and_the_kind_and_due_columns(cli: Cli) -> None:
    item = checkpoint(kind="tool_approval", due_at="2025-01-02T04:04:06Z")
    cli.api.on(
        "GET",
        "/api/checkpoints",
        httpx.Response(200, json={"items": [item]}),
        httpx.Response(200, json={"items": []}),
    )

    result = cli.run("checkpoint", "list", "--mine")
    empty = cli.run("checkpoint", "list", "--mine")

    assert dict(cli.api.requests[0].url.params) == {"status": "open", "mine": "true"}
    header, line = result.out.splitlines()
    assert header.split() == [
        "ID", "TASK", "TOOL", "STATUS", "KIND", "RULE", "DUE", "REQUESTER", "CREATED", "ARGS"
    ]  # fmt: skip
    assert line.startswith("chk_1  tsk_1  refund.issue  open    tool_approval  approve: refund > 25")
    assert "2025-01-02 04:04:06" in line
    assert empty.out == "no open checkpoints for you to decide\n"


# --- checkpoint approve --edit / request-changes --------------------------------------------------


def test_checkpoint_approve_with_edits_sends_the_object_and_prints_the_diff(cli: Cli) -> None:
    decided = checkpoint(
        status="approved",
        edited_args={"order_id": "A-1", "amount": 25},
        edit_diff={"amount": {"from": 40, "to": 25}},
    )
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(200, json=decided))

    result = cli.run(
        "checkpoint", "approve", "chk_1", "--edit", '{"order_id": "A-1", "amount": 25}', "--comment", "cap"
    )

    assert result.code == 0
    [request] = cli.api.requests
    assert body(request) == {
        "decision": "approve_with_edits",
        "edited_args": {"order_id": "A-1", "amount": 25},
        "comment": "cap",
    }
    assert result.out.splitlines() == [
        "approved with edits chk_1: refund.issue on task tsk_1 (status: approved)",
        "edits applied:",
        "  amount: 40 -> 25",
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [("[1]", "error: --edit must be a JSON object\n"), ("{oops", "error: --edit is not valid JSON")],
)
def test_checkpoint_approve_refuses_a_bad_edit_before_calling_the_api(
    cli: Cli, edit: str, message: str
) -> None:
    result = cli.run("checkpoint", "approve", "chk_1", "--edit", edit)

    assert result.code == 2
    assert result.err.startswith(message)
    assert cli.api.requests == [] and cli.urls == []


def test_checkpoint_approve_still_open_waits_for_another_approver(cli: Cli) -> None:
    still_open = checkpoint(status="open", approvers_required=2)
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(200, json=still_open))

    result = cli.run("checkpoint", "approve", "chk_1")

    assert result.code == 0
    assert body(cli.api.requests[0]) == {"decision": "approve", "comment": ""}
    assert result.out.splitlines() == [
        "approval recorded; waiting for another approver; 2 approvals required",
        "  chk_1: refund.issue on task tsk_1 (status: open)",
    ]


def test_checkpoint_request_changes_sends_the_comment(cli: Cli) -> None:
    sent_back = checkpoint(status="changes_requested", comment="use the order total")
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(200, json=sent_back))

    result = cli.run("checkpoint", "request-changes", "chk_1", "--comment", "use the order total")

    assert result.code == 0
    [request] = cli.api.requests
    assert (request.method, request.url.path) == ("POST", "/api/checkpoints/chk_1/decision")
    assert body(request) == {"decision": "request_changes", "comment": "use the order total"}
    assert (
        result.out == "changes requested on chk_1: refund.issue on task tsk_1 (status: changes_requested)\n"
    )


def test_checkpoint_request_changes_needs_a_comment(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.run("checkpoint", "request-changes", "chk_1")
    assert "the following arguments are required: --comment" in cli.capsys.readouterr().err
    blank = cli.run("checkpoint", "request-changes", "chk_1", "--comment", "  ")

    assert exit_info.value.code == 2
    assert blank.code == 2
    assert blank.err.startswith("error: request-changes needs a --comment")
    assert cli.api.requests == []


def test_checkpoint_rejected_edit_prints_the_422_problem(cli: Cli) -> None:
    problem = {
        "title": "Unprocessable",
        "detail": "edited arguments are refused by policy: refund above the limit",
        "status": 422,
    }
    cli.api.on("POST", "/api/checkpoints/chk_1/decision", httpx.Response(422, json=problem))

    result = cli.run("checkpoint", "approve", "chk_1", "--edit", '{"amount": 9999}')

    assert (result.code, result.out) == (1, "")
    assert (
        result.err == "error: Unprocessable: edited arguments are refused by policy: refund above the limit\n"
    )
    assert body(cli.api.requests[0])["edited_args"] == {"amount": 9999}


# --- checkpoint reassign / comment ----------------------------------------------------------------


def test_checkpoint_reassign_sends_role_named_approvers_and_comment(cli: Cli) -> None:
    moved = checkpoint(assignee_role="admin", named_approvers=["usr_7", "usr_8"])
    cli.api.on("POST", "/api/checkpoints/chk_1/reassign", httpx.Response(200, json=moved))

    result = cli.run(
        "checkpoint",
        "reassign",
        "chk_1",
        "--role",
        "admin",
        "--approver",
        "carol@example.com",
        "usr_8",
        "--approver",
        "dave@example.com",
        "--comment",
        "on leave",
    )

    assert result.code == 0
    [request] = cli.api.requests
    assert (request.method, request.url.path) == ("POST", "/api/checkpoints/chk_1/reassign")
    assert body(request) == {
        "assignee_role": "admin",
        "named_approvers": ["carol@example.com", "usr_8", "dave@example.com"],
        "comment": "on leave",
    }
    assert result.out == "reassigned chk_1: role admin, named approvers usr_7, usr_8 (status: open)\n"


def test_checkpoint_reassign_role_only_omits_named_approvers(cli: Cli) -> None:
    cli.api.on(
        "POST", "/api/checkpoints/chk_1/reassign", httpx.Response(200, json=checkpoint(assignee_role="admin"))
    )

    result = cli.run("checkpoint", "reassign", "chk_1", "--role", "admin")

    assert result.code == 0
    assert body(cli.api.requests[0]) == {"assignee_role": "admin", "comment": ""}


def test_checkpoint_reassign_needs_a_role_or_an_approver(cli: Cli) -> None:
    result = cli.run("checkpoint", "reassign", "chk_1", "--comment", "x")
    with pytest.raises(SystemExit) as exit_info:
        cli.run("checkpoint", "reassign", "chk_1", "--role", "owner")

    assert (result.code, result.err) == (2, "error: reassign needs --role, --approver or both\n")
    assert exit_info.value.code == 2
    assert cli.api.requests == []


def test_checkpoint_comment_posts_the_body(cli: Cli) -> None:
    comments = [
        {"author_id": "usr_1", "body": "customer is waiting", "created_at": "2025-01-02T03:05:00Z"},
        {"author_id": "usr_2", "body": "on it", "created_at": "2025-01-02T03:30:00Z"},
    ]
    commented = {**CHECKPOINT_DETAIL, "comments": comments}
    cli.api.on("POST", "/api/checkpoints/chk_1/comments", httpx.Response(201, json=commented))

    result = cli.run("checkpoint", "comment", "chk_1", "on it")

    assert result.code == 0
    [request] = cli.api.requests
    assert (request.method, request.url.path) == ("POST", "/api/checkpoints/chk_1/comments")
    assert body(request) == {"body": "on it"}
    assert result.out == "commented on chk_1 (2 comment(s))\n"


def test_checkpoint_comment_refuses_an_empty_text(cli: Cli) -> None:
    result = cli.run("checkpoint", "comment", "chk_1", "  ")

    assert (result.code, result.err) == (2, "error: the comment is empty\n")
    assert cli.api.requests == []


# --- task submit --budget -------------------------------------------------------------------------


def test_submit_sends_the_budget_as_a_decimal_string(cli: Cli) -> None:
    cli.api.on("POST", "/api/tasks", httpx.Response(202, json=task()))

    result = cli.run("task", "submit", "refund_request", "refund A-1", "--budget", "0.50")

    assert result.code == 0
    assert body(cli.api.requests[0]) == {
        "workflow": "refund_request",
        "input": "refund A-1",
        "budget_usd": "0.50",
    }


@pytest.mark.parametrize("budget", ["0", "-1", "abc", "NaN", "Infinity"])
def test_submit_refuses_a_bad_budget_before_calling_the_api(cli: Cli, budget: str) -> None:
    result = cli.run("task", "submit", "refund_request", "hi", "--budget", budget)

    assert result.code == 2
    assert result.err.startswith("error: --budget must be a positive USD amount")
    assert cli.api.requests == []


def test_task_preview_prints_steps_checkpoints_and_budget(cli: Cli) -> None:
    answer = {
        "workflow": "refund_request@1",
        "description": "Refunds",
        "intake": {
            "picked": "refund_request@1",
            "confidence": 0.91,
            "options": [
                {"workflow": "refund_request@1", "confidence": 0.91},
                {"workflow": "summary@1", "confidence": 0.05},
            ],
        },
        "data_classification": "internal",
        "risk_class": "high",
        "steps": [
            {
                "name": "handle_refund",
                "kind": "agent",
                "agent": "refund_agent@1",
                "ladder": ["tier-frontier"],
                "tools": [
                    {
                        "name": "issue_refund",
                        "side_effect": "irreversible",
                        "likely": "depends on the arguments",
                        "rules": ["refund-small", "refund-needs-approval"],
                    }
                ],
            }
        ],
        "checkpoints": [
            {
                "step": "handle_refund",
                "kind": "tool_approval",
                "tool": "issue_refund",
                "when": "depends on the arguments",
            }
        ],
        "budget": {"task_limit_usd": "0.50", "likely_usd": "0.012", "worst_case_usd": "0.3"},
    }
    cli.api.on("POST", "/api/tasks/preview", httpx.Response(200, json=answer))
    result = cli.run("task", "preview", "Refund 300 EUR on ORD-1002", "--budget", "0.5")
    assert result.code == 0
    sent = cli.api.requests[-1]
    assert json.loads(sent.content) == {"input": "Refund 300 EUR on ORD-1002", "budget_usd": "0.5"}
    assert "picked with 91% confidence" in result.out
    assert "tool_approval" in result.out and "worst case $0.3" in result.out
