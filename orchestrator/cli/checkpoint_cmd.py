"""`frontdesk checkpoint list|show|approve|reject|request-changes|reassign|comment`: human
checkpoints through the REST API.

    frontdesk checkpoint list [--status open] [--mine] [--json]
    frontdesk checkpoint show ID [--json]
    frontdesk checkpoint approve ID [--comment C] [--edit JSON]
    frontdesk checkpoint reject ID [--comment C]
    frontdesk checkpoint request-changes ID --comment C
    frontdesk checkpoint reassign ID [--role approver|admin] [--approver EMAIL_OR_ID ...]
    frontdesk checkpoint comment ID TEXT

Exit codes: 0 ok, 1 the API refused or could not be reached, 2 bad usage (no token, bad `--edit`,
an empty comment, request-changes without a comment, reassign without a role or approver).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orchestrator.cli.api_client import CliError, connect
from orchestrator.cli.output import cell, columns, print_answer, table, time_cell
from orchestrator.cli.parsers import leaf, parse_object

CHECKPOINT_COLUMNS = columns(
    "ID=id TASK=task_id TOOL=tool STATUS=status KIND=kind RULE=rule DUE=due_at REQUESTER=requester_id "
    "CREATED=created_at ARGS=args"
)
DECISION_COLUMNS = columns(
    "WHEN=created_at BY=decider_id DECISION=decision ROUND=round COMMENT=comment EDITED=edited_args"
)
DECISION_VERBS = {
    "approve": "approved",
    "approve_with_edits": "approved with edits",
    "reject": "rejected",
    "request_changes": "changes requested on",
}


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
        return cell(step, 100)
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
        ("created", time_cell(cp.get("created_at"))),
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
    due = time_cell(cp.get("due_at")) if cp.get("due_at") else "no deadline"
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
        print(f"  {'decided':<10} by {cp.get('decided_by') or '-'} at {time_cell(cp.get('decided_at'))}")
        if cp.get("comment"):
            print(f"  {'comment':<10} {cp['comment']}")

    if cp.get("decisions"):
        print("\nDecisions")
        table(DECISION_COLUMNS, cp["decisions"], indent="  ")
    if cp.get("comments"):
        print("\nComments")
        for note in cp["comments"]:
            text = str(note.get("body", "")).replace("\n", "\n    ")
            print(f"  {time_cell(note.get('created_at'))}  {note.get('author_id')}: {text}")


def checkpoint_list(args: argparse.Namespace) -> int:
    def human(page: dict) -> None:
        if page.get("items"):
            table(CHECKPOINT_COLUMNS, page["items"])
        else:
            empty = f"no {args.status} checkpoints" if args.status else "no checkpoints"
            print(empty + (" for you to decide" if args.mine else ""))

    with connect(args) as api:
        print_answer(args, api.list_checkpoints(args.status, args.mine), human)
    return 0


def checkpoint_show(args: argparse.Namespace) -> int:
    with connect(args) as api:
        print_answer(args, api.get_checkpoint(args.id), _print_checkpoint_detail)
    return 0


def checkpoint_decide(args: argparse.Namespace) -> int:
    """`approve`, `reject` and `request-changes`: the parser sets `args.decision`; `approve --edit`
    becomes `approve_with_edits`."""
    decision = args.decision
    edited_args = parse_object(getattr(args, "edit", None), "--edit")
    if edited_args is not None:
        decision = "approve_with_edits"
    if decision == "request_changes" and not args.comment.strip():
        raise CliError("request-changes needs a --comment telling the agent what to change", code=2)
    with connect(args) as api:
        checkpoint = api.decide(args.id, decision, args.comment, edited_args)
    if _accepted_only(checkpoint):
        return 0
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


def _accepted_only(answer: dict) -> bool:
    """A 202: the task accepted the request but could not record it yet (the database is down)."""
    if answer.get("status") != "accepted" or "detail" not in answer:
        return False
    print(f"accepted, not recorded yet: {answer['detail']}")
    return True


def checkpoint_reassign(args: argparse.Namespace) -> int:
    if args.role is None and not args.approvers:
        raise CliError("reassign needs --role, --approver or both", code=2)
    with connect(args) as api:
        checkpoint = api.reassign(args.id, args.role, args.approvers or None, args.comment)
    if _accepted_only(checkpoint):
        return 0
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
    with connect(args) as api:
        checkpoint = api.add_comment(args.id, text)
    count = len(checkpoint.get("comments") or [])
    print(f"commented on {checkpoint.get('id', args.id)} ({count} comment(s))")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `checkpoint` command group; each leaf sets `args.func(args) -> exit code`."""
    checkpoints = subparsers.add_parser("checkpoint", help="list and decide human checkpoints")
    checkpoints = checkpoints.add_subparsers(dest="checkpoint_command", required=True, metavar="COMMAND")
    p = leaf(checkpoints, "list", checkpoint_list, "list checkpoints", json_flag=True)
    p.add_argument("--status", default="open", help="checkpoint status (default open)")
    p.add_argument("--mine", action="store_true", help="only checkpoints I may decide")
    p = leaf(
        checkpoints, "show", checkpoint_show, "show a checkpoint: the call, why, who decides", json_flag=True
    )
    p.add_argument("id")
    for name, decision, help_text in (
        ("approve", "approve", "approve a checkpoint, optionally with edited arguments"),
        ("reject", "reject", "reject a checkpoint"),
        ("request-changes", "request_changes", "send a checkpoint back to the agent with a comment"),
    ):
        p = leaf(checkpoints, name, checkpoint_decide, help_text)
        p.set_defaults(decision=decision)
        p.add_argument("id")
        if decision == "request_changes":
            p.add_argument("--comment", required=True, help="what the agent should change")
        else:
            p.add_argument("--comment", default="", help="recorded with the decision")
        if decision == "approve":
            p.add_argument("--edit", metavar="JSON", help="run the tool with these arguments (a JSON object)")
    p = leaf(checkpoints, "reassign", checkpoint_reassign, "reassign an open checkpoint (admins)")
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
    p = leaf(checkpoints, "comment", checkpoint_comment, "comment on a checkpoint")
    p.add_argument("id")
    p.add_argument("text", help="the comment; `-` reads it from stdin")
