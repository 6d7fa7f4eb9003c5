"""`frontdesk model-calls list|reconcile`: the operator's view of router requests in the books.

They work on the database named in settings (FRONTDESK_DATABASE_URL), like `frontdesk tenant`:

    frontdesk model-calls list [--tenant T] [--status interrupted] [--task ID] [--limit N] [--json]
    frontdesk model-calls reconcile ID --cost USD [--tokens-in N --tokens-out N] [--note TEXT]
    frontdesk model-calls reconcile ID --not-billed [--note TEXT]     never reached a provider

An `interrupted` request (its worker died before the answer was recorded) counts at its estimate
in the task's cost and the tenant's spend until it is reconciled with the router's own logs;
reconciling sets the real figures there and in the budgets, and is audited as `--actor` (default
`cli:<os user>`). Exit codes: 0 done, 1 the database cannot be used, 2 bad input or not found.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlmodel import Session

from orchestrator.cli.accounts_cmd import Report, _guarded, _json, _say, _table, actor
from orchestrator.services import model_calls

LIST_SPEC = (
    "ID=id TENANT=tenant_id TASK=task_id STEP=step TIER=tier STATUS=status COST=cost_usd "
    "IN=prompt_tokens OUT=completion_tokens CREATED=created_at NOTE=note"
)


def calls_list(args: argparse.Namespace, session: Session) -> Report:
    rows = model_calls.list_calls(
        session, tenant_id=args.tenant, status=args.status, task_id=args.task, limit=args.limit
    )
    if args.json:
        return _json(list(rows))
    items: list[dict[str, Any]] = []
    for r in rows:
        item = r.model_dump(mode="json")
        if r.status == "interrupted":
            item["cost_usd"] = f"{item['cost_usd']} (estimated)"
        items.append(item)
    return _table(LIST_SPEC, items, "no model calls match")


def calls_reconcile(args: argparse.Namespace, session: Session) -> Report:
    done = model_calls.reconcile(
        session,
        actor=args.actor or actor(),
        call_id=args.id,
        tenant_id=args.tenant,
        cost_usd=args.cost,
        tokens_in=args.tokens_in,
        tokens_out=args.tokens_out,
        note=args.note or "",
        not_billed=args.not_billed,
    )
    if args.json:
        return _json(done)
    d = done.model_dump(mode="json")
    c = d["call"]
    return _say(
        f"model call {c['id']} of task {c['task_id']} reconciled: {d['previous_cost_usd']} USD (estimated) -> "
        f"{c['cost_usd']} USD; difference {d['difference_usd']} USD applied to the task's cost and to "
        f"{d['budgets_adjusted']} budget(s) of tenant {c['tenant_id']}"
    )


def register(sub: Any) -> None:
    top = sub.add_parser(
        "model-calls",
        help="list router requests in the books; reconcile interrupted ones (on the database)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    leaves = top.add_subparsers(dest="model_calls_command", required=True, metavar="ACTION")

    p = leaves.add_parser("list", help="model calls, newest first")
    p.add_argument("--tenant", help="only this tenant's calls")
    p.add_argument("--status", choices=model_calls.STATUSES, help="e.g. interrupted: the ones to reconcile")
    p.add_argument("--task", help="only this task's calls")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(calls_list))

    p = leaves.add_parser("reconcile", help="set an interrupted call's real cost from the router's logs")
    p.add_argument("id", help="the model call's id (mc_…)")
    billed = p.add_mutually_exclusive_group(required=True)
    billed.add_argument("--cost", help="what the router's logs show it cost, in USD")
    billed.add_argument(
        "--not-billed", action="store_true", help="the router's logs show it never reached a provider"
    )
    p.add_argument("--tokens-in", type=int, help="prompt tokens, from the router's logs")
    p.add_argument("--tokens-out", type=int, help="completion tokens, from the router's logs")
    p.add_argument("--note", help="why, or where the figures come from")
    p.add_argument("--tenant", help="refuse the call unless it is this tenant's")
    p.add_argument("--actor", help="who the audit trail names (default: cli:<os user>)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guarded(calls_reconcile))
