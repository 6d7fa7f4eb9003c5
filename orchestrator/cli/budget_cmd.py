"""`frontdesk budget list|set`: a month's budgets and an admin's limits, over the REST API.

    frontdesk budget list [--month 2026-11] [--json]
    frontdesk budget set tenant_month 100 [--on-breach stop]
    frontdesk budget set agent_month 20 --subject refund_agent

Same token, URL and exit codes as `frontdesk task …` (orchestrator.cli.task_cmd).
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from orchestrator.cli.api_client import CliError, connect
from orchestrator.cli.output import columns, print_answer, table
from orchestrator.cli.parsers import leaf

SCOPES = ("tenant_month", "agent_month", "tool_month", "task_max")
BUDGET_COLUMNS = columns(
    "SCOPE=scope SUBJECT=subject PERIOD=period LIMIT=limit SPENT=spent RESERVED=reserved "
    "REMAINING=remaining ON_BREACH=on_breach SOURCE=source"
)
TASK_COLUMNS = columns(
    "TASK=task_id SCOPE=scope PERIOD=period LIMIT=limit SPENT=spent RESERVED=reserved "
    "REMAINING=remaining ON_BREACH=on_breach COUNTER=counter_id"
)


def _money(value: Any, none: str = "-") -> str:
    return none if value is None else f"${value}"


def _row(line: dict) -> dict:
    return {
        **line,
        "limit": _money(line.get("limit_usd"), "unlimited"),
        "spent": _money(line.get("spent_usd")),
        "reserved": _money(line.get("reserved_usd")),
        "remaining": _money(line.get("remaining_usd")),
    }


def _print_report(report: dict) -> None:
    print(f"Budgets of {report.get('tenant_id')} for {report.get('month')}")
    table(BUDGET_COLUMNS, [_row(b) for b in report.get("budgets", [])], indent="  ")
    tasks = report.get("tasks", [])
    if tasks:
        print("\nTasks created this month")
        table(TASK_COLUMNS, [_row(t) for t in tasks], indent="  ")
    else:
        print("\nno task budgets this month")


def budget_list(args: argparse.Namespace) -> int:
    with connect(args) as api:
        report = api.json("GET", "/api/budgets", params={"month": args.month} if args.month else {})
    print_answer(args, report, _print_report)
    return 0


def budget_set(args: argparse.Namespace) -> int:
    try:
        limit = Decimal(args.limit.strip().lstrip("$"))
    except InvalidOperation:
        raise CliError(
            f"LIMIT must be a USD amount such as 100 or 0.50, got {args.limit!r}", code=2
        ) from None
    if not limit.is_finite() or limit < 0:
        raise CliError(f"LIMIT must be a non-negative USD amount, got {args.limit!r}", code=2)
    body: dict[str, Any] = {"subject": args.subject, "limit_usd": str(limit)}
    if args.on_breach:
        body["on_breach"] = args.on_breach
    with connect(args) as api:
        line = api.json("PUT", f"/api/budgets/{quote(args.scope, safe='')}", json=body)

    def human(line: dict) -> None:
        subject = f" of {line['subject']}" if line.get("subject") else ""
        print(
            f"{line.get('scope')}{subject}: limit {_money(line.get('limit_usd'), 'unlimited')}, "
            f"on breach {line.get('on_breach')}"
        )

    print_answer(args, line, human)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `budget` command group; each leaf sets `args.func(args) -> exit code`."""
    group = subparsers.add_parser("budget", help="list budgets and set tenant limits (admins)")
    group = group.add_subparsers(dest="budget_command", required=True, metavar="COMMAND")
    p = leaf(
        group, "list", budget_list, "budgets of a month: limit, spent, reserved, remaining", json_flag=True
    )
    p.add_argument("--month", help="YYYY-MM (UTC); default this month")
    p = leaf(group, "set", budget_set, "set a tenant, agent, tool or per-task limit", json_flag=True)
    p.add_argument("scope", choices=SCOPES, help=" | ".join(SCOPES))
    p.add_argument("limit", metavar="LIMIT", help="USD, e.g. 100 or 0.50")
    p.add_argument("--subject", default="", help="the agent or tool name (agent_month, tool_month)")
    p.add_argument(
        "--on-breach", choices=("pause", "stop"), help="default: the rule in policies/budgets.yaml"
    )
