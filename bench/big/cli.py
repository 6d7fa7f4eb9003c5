"""`python -m bench.big`: run the figures, print the table, write .frontdesk/bench/big.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.big import flow, reads
from bench.big.common import REPO, remove_snapshot, snapshot

FIGURES = ("reads", "audit", "parked")
READS_TARGET_MS = 50.0
RSS_TARGET_MB = 500.0


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: figure, value, target, verdict (pass | fail | printed | info)."""
    out: list[dict[str, Any]] = []
    r = result.get("reads")
    if r:
        n = r["tasks"]
        for mode in ("serial", "paced", "saturated"):
            m = r.get(mode)
            if not m:
                continue
            for route in reads.ROUTES:
                s = m[route]
                p95 = s["p95_ms"]
                judged = mode == "paced"
                out.append({
                    "figure": f"{route} p95, {n:,} tasks in PostgreSQL, {m['readers']} readers ({mode}, "
                    f"{m['requests_per_s']} req/s, API {m['api_cpu_ms_per_request']} ms CPU/req)",
                    "value": f"p50 {_ms(s['p50_ms'])} / p95 {_ms(p95)} / p99 {_ms(s['p99_ms'])} (n={s['n']})",
                    "target": "<= 50 ms p95" if judged else "(printed)",
                    "verdict": ("pass" if p95 is not None and p95 <= READS_TARGET_MS else "fail") if judged else "info",
                })  # fmt: skip
    a = result.get("audit")
    if a:
        out.append({
            "figure": f"audit events/s in one tenant, {a['in_flight']} tasks in flight on PostgreSQL ({a['tasks']} tasks)",
            "value": f"{a['audit_events_per_s']} events/s ({a['audit_events']} events in {a['wall_s']} s, "
            f"{a['audit_events_per_task']}/task, {a['tasks_per_s']} tasks/s); chain "
            f"{'verifies' if a['chains_ok'] else 'BROKEN'}",
            "target": "printed, with the chain still verifying",
            "verdict": "printed" if a["chains_ok"] and a["statuses"] == {"completed": a["tasks"]} else "fail",
        })  # fmt: skip
    p = result.get("parked")
    if p:
        worst = max(p["rss_mb_parked"]["worker"], p["rss_mb_after"]["worker"])
        lat = p["approval_to_completion"]
        out.append({
            "figure": f"{p['parked']:,} tasks parked at a checkpoint: worker RSS (parked / after)",
            "value": f"{p['rss_mb_parked']['worker']} MB / {p['rss_mb_after']['worker']} MB",
            "target": f"<= {RSS_TARGET_MB:.0f} MB",
            "verdict": "pass" if worst <= RSS_TARGET_MB else "fail",
        })  # fmt: skip
        out.append({
            "figure": f"{p['parked']:,} parked tasks approved ({p['in_flight']} at a time) and completed",
            "value": f"{p['statuses'].get('completed', 0)}/{p['parked']} completed; approval -> completion "
            f"p50 {_ms(lat['p50_ms'])}, p95 {_ms(lat['p95_ms'])}; refunds not exactly once: {p['refunds_not_once']}",
            "target": "all approved and completed, p50 printed",
            "verdict": "pass" if p["all_completed"] and p["refunds_not_once"] == 0 else "fail",
        })  # fmt: skip
        if p["parked"] < 10_000:
            out.append({
                "figure": "10,000 tasks parked (the issue's size)",
                "value": f"not run here: this run parked {p['parked']:,}",
                "target": "<= 500 MB, all completed",
                "verdict": "not measured",
            })  # fmt: skip
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Code: {result['code']}. Machine: {result['machine']}.",
        "",
        "| figure | value | target | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['figure']} | {r['value']} | {r['target']} | {r['verdict']} |" for r in result["rows"]]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    figures = set(args.only or FIGURES)
    code, described = snapshot(args.at)
    result: dict[str, Any] = {
        "code": described,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        if "reads" in figures:
            print(f"reads: {args.tasks} tasks, {args.readers} readers", file=sys.stderr)
            result["reads"] = await reads.run(args, code)
        if figures & {"audit", "parked"}:
            print("audit / parked: one stack on PostgreSQL", file=sys.stderr)
            result.update(await flow.run(args, code, figures))
    finally:
        remove_snapshot(code)
    result["rows"] = rows(result)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.big", description=__doc__)
    p.add_argument("--only", action="append", choices=FIGURES, help="run only this figure (repeatable)")
    p.add_argument(
        "--at",
        metavar="REV",
        help="run the API and worker from `git archive REV` (default: the working tree)",
    )
    p.add_argument("--out", type=Path, default=REPO / ".frontdesk" / "bench" / "big.json")
    p.add_argument(
        "--update", action="store_true", help="keep the figures of --out that this run does not measure"
    )
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench databases at the end")
    g = p.add_argument_group("reads")
    g.add_argument("--tasks", type=int, default=100_000, help="tasks seeded (default 100000)")
    g.add_argument("--readers", type=int, default=50, help="concurrent readers (default 50)")
    g.add_argument("--seconds", type=float, default=60.0, help="measured seconds per pass (default 60)")
    g.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured seconds before each pass (default 5)"
    )
    g.add_argument(
        "--think", type=float, default=1.0, help="paced pass: s between a reader's requests (default 1)"
    )
    g.add_argument("--serial-seconds", type=float, default=15.0, help="one reader alone first, s (0: skip)")
    g.add_argument("--no-saturate", dest="saturate", action="store_false", help="skip the saturated pass")
    g.add_argument("--reuse-db", metavar="NAME", help="read a database seeded by an earlier --keep-db run")
    g.add_argument(
        "--explain", action="store_true", help="store EXPLAIN ANALYZE of the list queries in the JSON"
    )
    g = p.add_argument_group("audit and parked")
    g.add_argument("--in-flight", type=int, default=20, help="tasks in flight (default 20)")
    g.add_argument("--audit-tasks", type=int, default=100, help="tasks for the audit figure (default 100)")
    g.add_argument("--parked", type=int, default=10_000, help="tasks parked at a checkpoint (default 10000)")
    p.add_argument("--min-rounds", type=int, default=0,
                   help="each read pass lasts until every route was timed this many times (default 0)")  # fmt: skip
    p.add_argument("--small", action="store_true",
                   help="a smoke-test size: 1000 tasks, 10 readers, 2 s passes, 3 audit tasks, 3 parked, 3 in flight")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.small:
        args.tasks, args.readers, args.seconds, args.warmup, args.serial_seconds = 1000, 10, 2.0, 0.5, 2.0
        args.audit_tasks, args.parked, args.in_flight = 3, 3, 3
        args.min_rounds = 1  # every route timed at least once, however loaded the machine
    result = asyncio.run(run(args))
    if args.update and args.out.exists():  # keep the figures of an earlier run that this one skipped
        earlier = json.loads(args.out.read_text())
        kept = {k: earlier[k] for k in ("reads", "audit", "parked") if k in earlier and k not in result}
        for k, v in kept.items():
            result[k] = {
                **v,
                "from_earlier_run": {"code": earlier.get("code"), "started": earlier.get("started")},
            }
        result["rows"] = rows(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    print(markdown(result))
    print(f"\n(everything in {args.out})")
