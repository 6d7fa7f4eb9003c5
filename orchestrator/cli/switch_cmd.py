"""`frontdesk switch …`: list, flip and audit kill switches through the REST API.

    frontdesk switch list [--json]
    frontdesk switch history [--limit N] [--json]
    frontdesk switch on SCOPE [SUBJECT] --reason R [--mode pause|stop]
    frontdesk switch off SCOPE [SUBJECT] [--reason R]

SCOPE is tenant (your token's tenant), agent or tool (a name in your tenant), or global (needs the
platform_admin role). Same token, URL and exit codes as the other API commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.cli.api_client import CliError, connect
from orchestrator.cli.output import columns, print_answer, table
from orchestrator.cli.parsers import leaf

SWITCH_COLUMNS = columns(
    "SCOPE=scope SUBJECT=subject TENANT=tenant_id ACTIVE=active MODE=mode REASON=reason BY=flipped_by "
    "FLIPPED=flipped_at"
)
EVENT_COLUMNS = columns(
    "AT=at SCOPE=scope SUBJECT=subject TENANT=tenant_id ACTIVE=active MODE=mode BY=flipped_by REASON=reason"
)
SCOPES = ("global", "tenant", "agent", "tool")


def _rows(items: list[dict]) -> list[dict]:
    return [{**item, "active": "on" if item.get("active") else "off"} for item in items]


def switch_list(args: argparse.Namespace) -> int:
    def human(page: dict) -> None:
        items = page.get("items", [])
        if not items:
            print("no kill switches have been flipped")
            return
        table(SWITCH_COLUMNS, _rows(items))
        on = sum(1 for item in items if item.get("active"))
        print(f"{on} of {len(items)} switch(es) on")

    with connect(args) as api:
        print_answer(args, api.json("GET", "/api/switches"), human)
    return 0


def switch_history(args: argparse.Namespace) -> int:
    def human(page: dict) -> None:
        items = page.get("items", [])
        if items:
            table(EVENT_COLUMNS, _rows(items))
        else:
            print("no flips recorded")

    with connect(args) as api:
        print_answer(args, api.json("GET", "/api/switches/history", params={"limit": args.limit}), human)
    return 0


def _body(args: argparse.Namespace, active: bool) -> dict[str, Any]:
    subject = args.subject or ""
    if args.scope in ("agent", "tool") and not subject:
        raise CliError(f"a {args.scope} switch needs the {args.scope} name: switch on {args.scope} NAME", 2)
    if args.scope in ("global", "tenant") and subject:
        raise CliError(f"a {args.scope} switch takes no SUBJECT (got {subject!r})", 2)
    body: dict[str, Any] = {"scope": args.scope, "subject": subject, "active": active, "reason": args.reason}
    if getattr(args, "mode", None):
        body["mode"] = args.mode
    return body


def _flip(args: argparse.Namespace, active: bool) -> int:
    body = _body(args, active)
    with connect(args) as api:
        row = api.json("POST", "/api/switches", json=body)
    what = row.get("scope", args.scope)
    if what == "tenant":
        what += f" {row.get('tenant_id')}"
    elif what != "global":
        what += f" {row.get('subject')}"
    state = f"ON ({row.get('mode')})" if row.get("active") else "off"
    print(f"kill switch {what} is {state}" + (f": {row['reason']}" if row.get("reason") else ""))
    return 0


def switch_on(args: argparse.Namespace) -> int:
    return _flip(args, True)


def switch_off(args: argparse.Namespace) -> int:
    return _flip(args, False)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `switch` command group."""
    group = subparsers.add_parser("switch", help="list and flip kill switches")
    group = group.add_subparsers(dest="switch_command", required=True, metavar="COMMAND")
    leaf(
        group, "list", switch_list, "list the kill switches of your tenant and the global one", json_flag=True
    )
    p = leaf(group, "history", switch_history, "every flip, newest first", json_flag=True)
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    for name, command, text in [
        ("on", switch_on, "turn a kill switch on: running tasks pause or stop at their next step"),
        ("off", switch_off, "turn a kill switch off"),
    ]:
        p = leaf(group, name, command, text)
        p.add_argument("scope", choices=SCOPES, metavar="SCOPE", help="global | tenant | agent | tool")
        p.add_argument("subject", nargs="?", metavar="SUBJECT", help="the agent or tool name")
        if name == "on":
            p.add_argument("--mode", choices=("pause", "stop"), default="stop", help="default stop")
            p.add_argument("--reason", required=True, help="shown to everyone the switch stops")
        else:
            p.add_argument("--reason", default="", help="recorded with the flip")
