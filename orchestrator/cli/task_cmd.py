"""`frontdesk task submit|preview|show|list|cancel`: tasks through the REST API.

    frontdesk task submit refund_request "my parcel never arrived" [--data JSON] [--budget 0.50] [--wait]
    frontdesk task preview "refund ORD-1001" [--workflow NAME] [--budget USD] [--json]
    frontdesk task show ID [--json]          frontdesk task list [--status S] [--json]
    frontdesk task cancel ID

Exit codes: 0 ok, 1 the API refused or could not be reached, 2 bad usage (no token, bad `--data`
or `--budget`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from orchestrator.cli.api_client import ApiClient, CliError, connect
from orchestrator.cli.output import cell, columns, cost_cell, print_answer, table, time_cell
from orchestrator.cli.parsers import leaf, parse_object
from orchestrator.contracts import TERMINAL_STATUSES

WAIT_STOP_STATUSES = TERMINAL_STATUSES | {"waiting"}
POLL_SECONDS = 0.5
_sleep = time.sleep  # replaced in tests

STEP_COLUMNS = columns("#=index STEP=name AGENT=agent STATUS=status ERROR=error")
MODEL_CALL_COLUMNS = columns(
    "STEP=step TURN=turn TRY=attempt TIER=tier MODEL=model_served IN=prompt_tokens OUT=completion_tokens "
    "CACHED=cached_tokens USD=cost_usd MS=latency_ms OK=ok ERROR=error"
)
TOOL_CALL_COLUMNS = columns(
    "STEP=step TURN=turn TOOL=tool DECISION=effect RULE=rule STATUS=status ARGS=args ERROR=error"
)
TASK_CHECKPOINT_COLUMNS = columns(
    "ID=id TOOL=tool STATUS=status RULE=rule BY=decided_by DECIDED=decided_at COMMENT=comment"
)
TASK_LIST_COLUMNS = columns(
    "ID=id WORKFLOW=workflow STATUS=status OUTCOME=outcome COST=cost CREATED=created_at ENDED=ended_at"
)
TASK_SECTIONS = [
    ("Steps", "steps", STEP_COLUMNS),
    ("Model calls", "model_calls", MODEL_CALL_COLUMNS),
    ("Tool calls", "tool_calls", TOOL_CALL_COLUMNS),
    ("Checkpoints", "checkpoints", TASK_CHECKPOINT_COLUMNS),
]


def _print_task_detail(task: dict) -> None:
    print(f"Task {task.get('id')}  {task.get('workflow')}")
    outcome = f" ({task['outcome']})" if task.get("outcome") else ""
    cost = task.get("cost") or {}
    for label, value in [
        ("status", f"{task.get('status')}{outcome}"),
        ("requester", task.get("requester_id")),
        ("created", time_cell(task.get("created_at"))),
        ("ended", time_cell(task.get("ended_at"))),
        ("cost", f"{cost_cell(cost)} over {cost.get('model_calls', 0)} model call(s)"),
        ("input", cell(task.get("input"), 100)),
        ("error", task.get("error")),
    ]:
        if value:
            print(f"  {label:<10} {value}")
    for title, key, cols in TASK_SECTIONS:
        if task.get(key):
            print(f"\n{title}")
            table(cols, task[key], indent="  ")
    if task.get("output") is not None:
        output = task["output"]
        print("\nOutput")
        print(output if isinstance(output, str) else json.dumps(output, indent=2, ensure_ascii=False))


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
    data = parse_object(args.data, "--data")
    budget = _parse_budget(args.budget)
    # Progress goes to stderr with --json, so stdout stays one JSON document.
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    with connect(args) as api:
        response = api.submit_task(args.workflow, text, data, args.idempotency_key, budget)
        task = response.json()
        replay = " (idempotent replay: existing task)" if response.status_code == 200 else ""
        say(f"submitted {task['id']}{replay}")
        if args.wait:
            task = _wait(api, task, args.timeout, say)
    print_answer(args, task, _print_outcome)
    return 0


def task_preview(args: argparse.Namespace) -> int:
    text = sys.stdin.read().strip() if args.text == "-" else args.text
    budget = _parse_budget(args.budget)
    with connect(args) as api:
        preview = api.preview_task(args.workflow, text, budget)
    print_answer(args, preview, _print_preview)
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
    print(f"{task['id']}  {task.get('status')}{outcome}  cost {cost_cell(task.get('cost'))}")
    if task.get("status") == "waiting":
        print("waiting for a human decision: see `frontdesk checkpoint list`")
    if task.get("error"):
        print(f"error: {task['error']}")


def task_show(args: argparse.Namespace) -> int:
    with connect(args) as api:
        print_answer(args, api.get_task(args.id), _print_task_detail)
    return 0


def _print_task_page(page: dict) -> None:
    items = page.get("items", [])
    table(TASK_LIST_COLUMNS, items)
    print(f"{len(items)} of {page.get('total', len(items))} task(s)")


def task_list(args: argparse.Namespace) -> int:
    with connect(args) as api:
        print_answer(args, api.list_tasks(args.status, args.limit, args.offset), _print_task_page)
    return 0


def task_cancel(args: argparse.Namespace) -> int:
    with connect(args) as api:
        task = api.cancel_task(args.id)
    print(f"cancel requested for {task.get('id', args.id)} (status: {task.get('status')})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `task` command group; each leaf sets `args.func(args) -> exit code`."""
    tasks = subparsers.add_parser("task", help="submit, inspect and cancel tasks")
    tasks = tasks.add_subparsers(dest="task_command", required=True, metavar="COMMAND")
    p = leaf(tasks, "submit", task_submit, "submit a task to a workflow", json_flag=True)
    p.add_argument("workflow", help="workflow name, optionally pinned: refund_request@1")
    p.add_argument("text", help="the request as free text; `-` reads it from stdin")
    p.add_argument("--data", help="structured input as a JSON object")
    p.add_argument("--idempotency-key", help="resubmitting with the same key returns the existing task")
    p.add_argument("--wait", action="store_true", help="poll until the task ends or waits for a human")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds --wait polls at most (default 120)")
    p.add_argument("--budget", metavar="USD", help="this task's budget in USD, e.g. 0.50")
    p = leaf(
        tasks,
        "preview",
        task_preview,
        "what a request would run, need and cost; nothing starts",
        json_flag=True,
    )
    p.add_argument("text", help="the request as free text; `-` reads it from stdin")
    p.add_argument("--workflow", help="the workflow; left out, intake picks one")
    p.add_argument("--budget", metavar="USD", help="the task budget to check against")
    p = leaf(tasks, "show", task_show, "show a task with its steps, calls and checkpoints", json_flag=True)
    p.add_argument("id")
    p = leaf(tasks, "list", task_list, "list recent tasks", json_flag=True)
    p.add_argument("--status", help="only tasks with this status")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--offset", type=int, default=0, help="skip this many")
    leaf(tasks, "cancel", task_cancel, "cancel a task").add_argument("id")
