"""`frontdesk task …` and `frontdesk checkpoint …`: the REST API client commands.

Every command talks to the Frontdesk API over HTTP with a bearer token: `--token`, else the file
`<state_dir>/cli-token` that `frontdesk dev` writes. The token is never printed. Exit codes: 0 ok,
1 the API refused or could not be reached, 2 bad usage (no token, bad `--data`, `--edit` or `--budget`).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator.contracts import TERMINAL_STATUSES
from orchestrator.settings import Settings, get_settings

TOKEN_FILE = "cli-token"
NO_TOKEN = "no API token: pass --token or run `frontdesk dev`, which writes .frontdesk/cli-token"
WAIT_STOP_STATUSES = TERMINAL_STATUSES | {"waiting"}
POLL_SECONDS = 0.5
_sleep = time.sleep  # replaced in tests


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
        return self.request("POST", "/api/tasks/preview", json=body).json()  # type: ignore[no-any-return]

    def list_tasks(self, status: str | None, limit: int, offset: int) -> dict:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return self.json("GET", "/api/tasks", params=params)

    def get_task(self, task_id: str) -> dict:
        return self.json("GET", f"/api/tasks/{quote(task_id, safe='')}")

    def cancel_task(self, task_id: str) -> dict:
        return self.json("POST", f"/api/tasks/{quote(task_id, safe='')}/cancel")

    def list_checkpoints(self, status: str | None, mine: bool = False) -> dict:
        params: dict[str, Any] = {"status": status} if status else {}
        if mine:
            params["mine"] = "true"
        return self.json("GET", "/api/checkpoints", params=params)

    def get_checkpoint(self, checkpoint_id: str) -> dict:
        return self.json("GET", _checkpoint_path(checkpoint_id))

    def decide(
        self, checkpoint_id: str, decision: str, comment: str, edited_args: dict | None = None
    ) -> dict:
        body: dict[str, Any] = {"decision": decision, "comment": comment}
        if edited_args is not None:
            body["edited_args"] = edited_args
        return self.json("POST", _checkpoint_path(checkpoint_id, "decision"), json=body)

    def reassign(
        self, checkpoint_id: str, role: str | None, approvers: list[str] | None, comment: str
    ) -> dict:
        body: dict[str, Any] = {"comment": comment}
        if role is not None:
            body["assignee_role"] = role
        if approvers is not None:
            body["named_approvers"] = approvers
        return self.json("POST", _checkpoint_path(checkpoint_id, "reassign"), json=body)

    def add_comment(self, checkpoint_id: str, text: str) -> dict:
        return self.json("POST", _checkpoint_path(checkpoint_id, "comments"), json={"body": text})


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


def _connect(args: argparse.Namespace) -> ApiClient:
    settings = get_settings()
    token = args.token or read_token(settings.state_dir)
    return build_client(args.url or default_url(settings), token)


# --- output helpers -------------------------------------------------------------------------------


def _cell(value: Any, width: int = 48) -> str:
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


def _usd(cost: dict | None) -> str:
    cost = cost or {}
    if cost.get("total_usd") is None:
        return "-"
    return f"${cost['total_usd']}" + (" (estimated)" if cost.get("estimated") else "")


Columns = list[tuple[str, str]]


def _columns(spec: str) -> Columns:
    """`"HEADER=key ..."` to (header, key) pairs; keys ending in `_at` are shown as times."""
    return [(head, key) for head, _, key in (part.partition("=") for part in spec.split())]


STEP_COLUMNS = _columns("#=index STEP=name AGENT=agent STATUS=status ERROR=error")
MODEL_CALL_COLUMNS = _columns(
    "STEP=step TURN=turn TRY=attempt TIER=tier MODEL=model_served IN=prompt_tokens OUT=completion_tokens "
    "CACHED=cached_tokens USD=cost_usd MS=latency_ms OK=ok ERROR=error"
)
TOOL_CALL_COLUMNS = _columns(
    "STEP=step TURN=turn TOOL=tool DECISION=effect RULE=rule STATUS=status ARGS=args ERROR=error"
)
TASK_CHECKPOINT_COLUMNS = _columns(
    "ID=id TOOL=tool STATUS=status RULE=rule BY=decided_by DECIDED=decided_at COMMENT=comment"
)
TASK_LIST_COLUMNS = _columns(
    "ID=id WORKFLOW=workflow STATUS=status OUTCOME=outcome COST=cost CREATED=created_at ENDED=ended_at"
)
CHECKPOINT_COLUMNS = _columns(
    "ID=id TASK=task_id TOOL=tool STATUS=status KIND=kind RULE=rule DUE=due_at REQUESTER=requester_id "
    "CREATED=created_at ARGS=args"
)
DECISION_COLUMNS = _columns(
    "WHEN=created_at BY=decider_id DECISION=decision ROUND=round COMMENT=comment EDITED=edited_args"
)
TASK_SECTIONS = [
    ("Steps", "steps", STEP_COLUMNS),
    ("Model calls", "model_calls", MODEL_CALL_COLUMNS),
    ("Tool calls", "tool_calls", TOOL_CALL_COLUMNS),
    ("Checkpoints", "checkpoints", TASK_CHECKPOINT_COLUMNS),
]


def _field(item: dict, key: str) -> str:
    value = item.get(key)
    if key.endswith("_at"):
        return _when(value)
    return _usd(value) if key == "cost" else _cell(value)


def _table(columns: Columns, items: list[dict], indent: str = "") -> None:
    cells = [[h for h, _ in columns], *[[_field(item, key) for _, key in columns] for item in items]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _print_task_detail(task: dict) -> None:
    print(f"Task {task.get('id')}  {task.get('workflow')}")
    outcome = f" ({task['outcome']})" if task.get("outcome") else ""
    cost = task.get("cost") or {}
    for label, value in [
        ("status", f"{task.get('status')}{outcome}"),
        ("requester", task.get("requester_id")),
        ("created", _when(task.get("created_at"))),
        ("ended", _when(task.get("ended_at"))),
        ("cost", f"{_usd(cost)} over {cost.get('model_calls', 0)} model call(s)"),
        ("input", _cell(task.get("input"), 100)),
        ("error", task.get("error")),
    ]:
        if value:
            print(f"  {label:<10} {value}")
    for title, key, columns in TASK_SECTIONS:
        if task.get(key):
            print(f"\n{title}")
            _table(columns, task[key], indent="  ")
    if task.get("output") is not None:
        output = task["output"]
        print("\nOutput")
        print(output if isinstance(output, str) else json.dumps(output, indent=2, ensure_ascii=False))


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int) or seconds <= 0:
        return f"{seconds} s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _sla_step(step: Any) -> str:
    """One SLA escalation step, e.g. `after 1h: escalate (+admin)` or `after 1d: auto_reject`."""
    if not isinstance(step, dict):
        return _cell(step, 100)
    roles = ", ".join(f"+{role}" for role in step.get("add_roles") or [])
    action = step.get("action") or "escalate"
    return f"after {_duration(step.get('after_seconds'))}: {action}" + (f" ({roles})" if roles else "")


def _print_diff(diff: dict, indent: str = "  ") -> None:
    """An edit diff `{key: {"from": old, "to": new}}` as `key: old -> new` lines."""
    for key in sorted(diff):
        change = diff[key] if isinstance(diff[key], dict) else {"to": diff[key]}
        old, new = (json.dumps(change.get(side), ensure_ascii=False) for side in ("from", "to"))
        print(f"{indent}{key}: {old} -> {new}")


def _print_json_block(value: Any, indent: str = "  ") -> None:
    for line in json.dumps(value, indent=2, ensure_ascii=False).splitlines():
        print(indent + line)


def _print_checkpoint_detail(cp: dict) -> None:
    print(f"Checkpoint {cp.get('id')}  {cp.get('kind') or 'checkpoint'}  {cp.get('status')}")
    for label, value in [
        ("task", cp.get("task_id")),
        ("requester", cp.get("requester_id")),
        ("created", _when(cp.get("created_at"))),
    ]:
        if value:
            print(f"  {label:<10} {value}")

    print(f"\nTool call\n  {cp.get('tool')}")
    _print_json_block(cp.get("args") or {}, indent="  ")
    if cp.get("edited_args") is not None:
        print("  edited to")
        _print_json_block(cp["edited_args"], indent="  ")
    if cp.get("edit_diff"):
        print("  changes")
        _print_diff(cp["edit_diff"], indent="    ")

    print("\nWhy")
    rule = cp.get("rule") or "-"
    for label, value in [
        ("reason", cp.get("reason")),
        ("rule", f"{rule} ({cp['rule_id']})" if cp.get("rule_id") else rule),
        ("policy", cp.get("policy_version")),
    ]:
        if value:
            print(f"  {label:<10} {value}")

    print("\nWho may decide")
    roles = [cp.get("assignee_role"), *(cp.get("extra_roles") or [])]
    required = cp.get("approvers_required") or 1
    level = cp.get("escalation_level") or 0
    due = _when(cp.get("due_at")) if cp.get("due_at") else "no deadline"
    for label, value in [
        ("roles", ", ".join(r for r in roles if r)),
        ("named", ", ".join(cp.get("named_approvers") or [])),
        ("required", f"{required} approval(s)"),
        ("due", due + (f" (escalation level {level})" if level else "")),
        ("sla", "; ".join(_sla_step(step) for step in cp.get("sla") or [])),
    ]:
        if value:
            print(f"  {label:<10} {value}")
    if cp.get("decided_by") or cp.get("decided_at"):
        print(f"  {'decided':<10} by {cp.get('decided_by') or '-'} at {_when(cp.get('decided_at'))}")
        if cp.get("comment"):
            print(f"  {'comment':<10} {cp['comment']}")

    if cp.get("decisions"):
        print("\nDecisions")
        _table(DECISION_COLUMNS, cp["decisions"], indent="  ")
    if cp.get("comments"):
        print("\nComments")
        for note in cp["comments"]:
            text = str(note.get("body", "")).replace("\n", "\n    ")
            print(f"  {_when(note.get('created_at'))}  {note.get('author_id')}: {text}")


# --- commands -------------------------------------------------------------------------------------


def _parse_object(raw: str | None, flag: str) -> dict | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"{flag} is not valid JSON: {exc.msg}", code=2) from exc
    if not isinstance(data, dict):
        raise CliError(f"{flag} must be a JSON object", code=2)
    return data


def _parse_data(raw: str | None) -> dict | None:
    return _parse_object(raw, "--data")


def _parse_budget(raw: str | None) -> Decimal | None:
    if raw is None:
        return None
    try:
        budget = Decimal(raw.strip().lstrip("$"))
    except InvalidOperation:
        budget = None
    if budget is None or not budget.is_finite() or budget <= 0:
        raise CliError(f"--budget must be a positive USD amount such as 5 or 0.50, got {raw!r}", code=2)
    return budget


def _wait(api: ApiClient, task: dict, timeout: float, progress: Callable[[str], None]) -> dict:
    """Poll the task until it is terminal or waiting for a human, reporting each status change."""
    deadline = time.monotonic() + timeout
    last = task.get("status")
    progress(f"{task['id']}  {last}")
    while True:
        task = api.get_task(task["id"])
        if task.get("status") != last:
            last = task.get("status")
            progress(f"  -> {last}")
        if last in WAIT_STOP_STATUSES:
            return task
        if time.monotonic() >= deadline:
            raise CliError(f"timed out after {timeout:g} s waiting for task {task['id']} (status: {last})")
        _sleep(POLL_SECONDS)


def task_submit(args: argparse.Namespace) -> int:
    text = sys.stdin.read().strip() if args.text == "-" else args.text
    data = _parse_data(args.data)
    budget = _parse_budget(args.budget)
    # Progress goes to stderr with --json, so stdout stays one JSON document.
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    with _connect(args) as api:
        response = api.submit_task(args.workflow, text, data, args.idempotency_key, budget)
        task = response.json()
        replay = " (idempotent replay: existing task)" if response.status_code == 200 else ""
        say(f"submitted {task['id']}{replay}")
        if args.wait:
            task = _wait(api, task, args.timeout, say)
    _output(args, task, _print_outcome)
    return 0


def task_preview(args: argparse.Namespace) -> int:
    text = sys.stdin.read().strip() if args.text == "-" else args.text
    budget = _parse_budget(args.budget)
    with _connect(args) as api:
        preview = api.preview_task(args.workflow, text, budget)
    _output(args, preview, _print_preview)
    return 0


def _print_preview(p: dict) -> None:
    print(f"workflow   {p['workflow']}: {p.get('description', '')}")
    intake = p.get("intake")
    if intake:
        others = ", ".join(f"{o['workflow']} {o['confidence']:.0%}" for o in intake["options"][1:])
        print(f"intake     picked with {intake['confidence']:.0%} confidence (runners-up: {others})")
    print(f"data       {p.get('data_classification')}, risk {p.get('risk_class')}")
    print("\nSteps")
    for step in p["steps"]:
        when = f"  (when {step['when']})" if step.get("when") else ""
        who = step.get("agent") or ""
        ladder = " > ".join(step.get("ladder", []))
        print(f"  {step['name']:<18} {step['kind']:<10} {who} {ladder}{when}")
        for tool in step.get("tools", []):
            rules = ", ".join(tool["rules"]) or "no rule: denied"
            print(f"      tool {tool['name']:<14} {tool['side_effect']:<12} {tool['likely']:<26} {rules}")
    print("\nCheckpoints it will or may need")
    for cp in p["checkpoints"] or [{"step": "-", "kind": "none expected", "when": ""}]:
        print(f"  {cp['step']:<18} {cp['kind']:<14} {cp.get('tool', '')} {cp.get('when', '')}")
    b = p["budget"]
    print(
        f"\nBudget     task limit ${b['task_limit_usd']}, likely ${b['likely_usd']}, worst case ${b['worst_case_usd']}"
    )


def _print_outcome(task: dict) -> None:
    outcome = f" ({task['outcome']})" if task.get("outcome") else ""
    print(f"{task['id']}  {task.get('status')}{outcome}  cost {_usd(task.get('cost'))}")
    if task.get("status") == "waiting":
        print("waiting for a human decision: see `frontdesk checkpoint list`")
    if task.get("error"):
        print(f"error: {task['error']}")


def _output(args: argparse.Namespace, answer: Any, human: Callable[[Any], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        human(answer)


def task_show(args: argparse.Namespace) -> int:
    with _connect(args) as api:
        _output(args, api.get_task(args.id), _print_task_detail)
    return 0


def _print_task_page(page: dict) -> None:
    items = page.get("items", [])
    _table(TASK_LIST_COLUMNS, items)
    print(f"{len(items)} of {page.get('total', len(items))} task(s)")


def task_list(args: argparse.Namespace) -> int:
    with _connect(args) as api:
        _output(args, api.list_tasks(args.status, args.limit, args.offset), _print_task_page)
    return 0


def task_cancel(args: argparse.Namespace) -> int:
    with _connect(args) as api:
        task = api.cancel_task(args.id)
    print(f"cancel requested for {task.get('id', args.id)} (status: {task.get('status')})")
    return 0


def checkpoint_list(args: argparse.Namespace) -> int:
    def human(page: dict) -> None:
        if page.get("items"):
            _table(CHECKPOINT_COLUMNS, page["items"])
        else:
            empty = f"no {args.status} checkpoints" if args.status else "no checkpoints"
            print(empty + (" for you to decide" if args.mine else ""))

    with _connect(args) as api:
        _output(args, api.list_checkpoints(args.status, args.mine), human)
    return 0


def checkpoint_show(args: argparse.Namespace) -> int:
    with _connect(args) as api:
        _output(args, api.get_checkpoint(args.id), _print_checkpoint_detail)
    return 0


DECISION_VERBS = {
    "approve": "approved",
    "approve_with_edits": "approved with edits",
    "reject": "rejected",
    "request_changes": "changes requested on",
}


def checkpoint_decide(args: argparse.Namespace) -> int:
    """`approve`, `reject` and `request-changes`: the parser sets `args.decision`; `approve --edit`
    becomes `approve_with_edits`."""
    decision = args.decision
    edited_args = _parse_object(getattr(args, "edit", None), "--edit")
    if edited_args is not None:
        decision = "approve_with_edits"
    if decision == "request_changes" and not args.comment.strip():
        raise CliError("request-changes needs a --comment telling the agent what to change", code=2)
    with _connect(args) as api:
        checkpoint = api.decide(args.id, decision, args.comment, edited_args)
    status = checkpoint.get("status")
    what = (
        f"{checkpoint.get('id', args.id)}: {checkpoint.get('tool')} on task {checkpoint.get('task_id')} "
        f"(status: {status})"
    )
    if decision.startswith("approve") and status == "open":
        required = checkpoint.get("approvers_required")
        needs = f"; {required} approvals required" if isinstance(required, int) and required > 1 else ""
        print(f"approval recorded; waiting for another approver{needs}")
        print(f"  {what}")
    else:
        print(f"{DECISION_VERBS[decision]} {what}")
    if checkpoint.get("edit_diff"):
        print("edits applied:")
        _print_diff(checkpoint["edit_diff"])
    return 0


def checkpoint_reassign(args: argparse.Namespace) -> int:
    if args.role is None and not args.approvers:
        raise CliError("reassign needs --role, --approver or both", code=2)
    with _connect(args) as api:
        checkpoint = api.reassign(args.id, args.role, args.approvers or None, args.comment)
    named = ", ".join(checkpoint.get("named_approvers") or []) or "-"
    print(
        f"reassigned {checkpoint.get('id', args.id)}: role {checkpoint.get('assignee_role')}, "
        f"named approvers {named} (status: {checkpoint.get('status')})"
    )
    return 0


def checkpoint_comment(args: argparse.Namespace) -> int:
    text = sys.stdin.read().strip() if args.text == "-" else args.text.strip()
    if not text:
        raise CliError("the comment is empty", code=2)
    with _connect(args) as api:
        checkpoint = api.add_comment(args.id, text)
    count = len(checkpoint.get("comments") or [])
    print(f"commented on {checkpoint.get('id', args.id)} ({count} comment(s))")
    return 0


# --- argparse -------------------------------------------------------------------------------------


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code

    return run


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="API base URL (default: http://<api_host>:<api_port> from settings)")
    common.add_argument("--token", help=f"bearer token (default: the file <state_dir>/{TOKEN_FILE})")
    return common


def _leaf(group: Any, name: str, command: Callable, help_text: str, *, json_flag: bool = False) -> Any:
    parser = group.add_parser(name, parents=[_common()], help=help_text, description=help_text)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the raw JSON answer")
    parser.set_defaults(func=_guarded(command))
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `task` and `checkpoint` command groups; each leaf sets `args.func(args) -> exit code`."""
    tasks = subparsers.add_parser("task", help="submit, inspect and cancel tasks")
    tasks = tasks.add_subparsers(dest="task_command", required=True, metavar="COMMAND")
    p = _leaf(tasks, "submit", task_submit, "submit a task to a workflow", json_flag=True)
    p.add_argument("workflow", help="workflow name, optionally pinned: refund_request@1")
    p.add_argument("text", help="the request as free text; `-` reads it from stdin")
    p.add_argument("--data", help="structured input as a JSON object")
    p.add_argument("--idempotency-key", help="resubmitting with the same key returns the existing task")
    p.add_argument("--wait", action="store_true", help="poll until the task ends or waits for a human")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds --wait polls at most (default 120)")
    p.add_argument("--budget", metavar="USD", help="this task's budget in USD, e.g. 0.50")
    p = _leaf(
        tasks,
        "preview",
        task_preview,
        "what a request would run, need and cost; nothing starts",
        json_flag=True,
    )
    p.add_argument("text", help="the request as free text; `-` reads it from stdin")
    p.add_argument("--workflow", help="the workflow; left out, intake picks one")
    p.add_argument("--budget", metavar="USD", help="the task budget to check against")
    p = _leaf(tasks, "show", task_show, "show a task with its steps, calls and checkpoints", json_flag=True)
    p.add_argument("id")
    p = _leaf(tasks, "list", task_list, "list recent tasks", json_flag=True)
    p.add_argument("--status", help="only tasks with this status")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--offset", type=int, default=0, help="skip this many")
    _leaf(tasks, "cancel", task_cancel, "cancel a task").add_argument("id")

    checkpoints = subparsers.add_parser("checkpoint", help="list and decide human checkpoints")
    checkpoints = checkpoints.add_subparsers(dest="checkpoint_command", required=True, metavar="COMMAND")
    p = _leaf(checkpoints, "list", checkpoint_list, "list checkpoints", json_flag=True)
    p.add_argument("--status", default="open", help="checkpoint status (default open)")
    p.add_argument("--mine", action="store_true", help="only checkpoints I may decide")
    p = _leaf(
        checkpoints, "show", checkpoint_show, "show a checkpoint: the call, why, who decides", json_flag=True
    )
    p.add_argument("id")
    for name, decision, help_text in (
        ("approve", "approve", "approve a checkpoint, optionally with edited arguments"),
        ("reject", "reject", "reject a checkpoint"),
        ("request-changes", "request_changes", "send a checkpoint back to the agent with a comment"),
    ):
        p = _leaf(checkpoints, name, checkpoint_decide, help_text)
        p.set_defaults(decision=decision)
        p.add_argument("id")
        if decision == "request_changes":
            p.add_argument("--comment", required=True, help="what the agent should change")
        else:
            p.add_argument("--comment", default="", help="recorded with the decision")
        if decision == "approve":
            p.add_argument("--edit", metavar="JSON", help="run the tool with these arguments (a JSON object)")
    p = _leaf(checkpoints, "reassign", checkpoint_reassign, "reassign an open checkpoint (admins)")
    p.add_argument("id")
    p.add_argument("--role", choices=("approver", "admin"), help="the role that may decide")
    p.add_argument(
        "--approver",
        dest="approvers",
        action="extend",
        nargs="+",
        metavar="EMAIL_OR_ID",
        help="named approvers (user ids or e-mails); repeatable",
    )
    p.add_argument("--comment", default="", help="recorded with the reassignment")
    p = _leaf(checkpoints, "comment", checkpoint_comment, "comment on a checkpoint")
    p.add_argument("id")
    p.add_argument("text", help="the comment; `-` reads it from stdin")
