"""`python -m reliability [--quick] [--json PATH] [scenario ...]`: run the scenarios, print the table
(requirement, figure, pass) and write every figure as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reliability import db_outage, faults, worker_kills
from reliability.report import Row, Setup, ToRows, no_refund_twice, table

RESUME_WITHIN_S = 15.0


def _kills(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = (
        {"kills": 2, "tasks": 4, "spacing": 15.0} if quick else {"kills": 10, "tasks": 30, "spacing": 20.0}
    )
    return size, lambda code: worker_kills.run(**size, worker_code=code)


def _kills_rows(r: dict[str, Any]) -> list[Row]:
    n, m = r["kills"], r["tasks"]
    return [
        Row("worker-kill", f"all {m} refund tasks complete through {n} worker SIGKILLs",
            f"{r['completed']}/{m} completed", r["completed"] == m),
        no_refund_twice("worker-kill", r),
        Row("worker-kill", f"a task resumes within {RESUME_WITHIN_S:.0f} s of a worker being available",
            f"longest stall {r['longest_stall_after_worker_ready_s']} s ({r['tasks_in_flight_at_kills']} tasks hit)",
            r["longest_stall_after_worker_ready_s"] <= RESUME_WITHIN_S),
    ]  # fmt: skip


def _db(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    # 200 s is past the ~165 s after which the old retry policy failed every task in flight.
    size: dict[str, Any] = (
        {"tasks": 3, "outage": 30.0, "limit": None} if quick else {"tasks": 4, "outage": 200.0, "limit": None}
    )
    return size, lambda code: db_outage.run(**size, worker_code=code)


def _db_rows(r: dict[str, Any]) -> list[Row]:
    m = r["tasks"]
    return [
        Row("postgres-outage", f"all {m} tasks survive PostgreSQL stopped for {r['outage_seconds']} s",
            f"{r['completed']}/{m} completed", r["completed"] == m),
        no_refund_twice("postgres-outage", r),
    ]  # fmt: skip


def _router(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = {"tasks": 3, "down": 15.0} if quick else {"tasks": 8, "down": 60.0}
    return size, lambda code: faults.router_down(**size, worker_code=code)


def _router_rows(r: dict[str, Any]) -> list[Row]:
    m = r["tasks"]
    return [
        Row("router-down", f"all {m} tasks survive the router down for {r['router_down_s']} s",
            f"{r['completed']}/{m} completed, {r['failed']} failed", r["completed"] == m),
        no_refund_twice("router-down", r),
    ]  # fmt: skip


def _model(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = {"tasks": 2 if quick else 5, "router_outage_limit": 30.0}
    return size, lambda code: faults.model_faults(**size, worker_code=code)


def _model_rows(r: dict[str, Any]) -> list[Row]:
    five, slow, bad = r["5xx"], r["timeout"], r["always_500"]
    return [
        Row("model-faults", "model answers 503 then 502: the task completes",
            f"{five['completed']}/{five['tasks']} completed", five["completed"] == five["tasks"]),
        Row("model-faults", "model slower than the router timeout once: the task completes",
            f"{slow['completed']}/{slow['tasks']} completed", slow["completed"] == slow["tasks"]),
        Row("model-faults", "model always answers 500: the task ends failed, nothing refunded",
            f"{'failed' if bad['failed'] else bad['other']} after {bad['seconds']} s, {bad['refunds']} refunds",
            bad["failed"] == 1 and bad["refunds"] == 0),
    ]  # fmt: skip


SCENARIOS: dict[str, tuple[Setup, ToRows]] = {
    "worker-kill": (_kills, _kills_rows),
    "postgres-outage": (_db, _db_rows),
    "router-down": (_router, _router_rows),
    "model-faults": (_model, _model_rows),
}


async def run(
    names: list[str], quick: bool, worker_code: Path | None = None
) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for name in names:
        setup, to_rows = SCENARIOS[name]
        size, scenario = setup(quick)
        started = time.monotonic()
        print(f"running {name} {size} ...", file=sys.stderr, flush=True)  # noqa: T201 - progress of a CLI
        try:
            result = await scenario(worker_code)
        except Exception as exc:  # one broken scenario must not hide the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append(Row(name, "the scenario runs", result["error"][:120], False))
        else:
            rows.extend(to_rows(result))
        raw[name] = {"size": size, "seconds": round(time.monotonic() - started, 1), "result": result}
    return rows, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and short outages (a few minutes)")
    parser.add_argument(
        "--worker-code",
        type=Path,
        help="run the worker from this folder (e.g. `git archive` of an older commit) for before/after figures",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(".frontdesk/reliability.json"), help="where to write the figures"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    rows, raw = asyncio.run(run(args.scenarios or list(SCENARIOS), args.quick, args.worker_code))
    print(table(rows))  # noqa: T201 - the CLI's output
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"quick": args.quick, "worker_code": args.worker_code, "rows": [asdict(r) for r in rows], "scenarios": raw},
                                    indent=2, default=str))  # fmt: skip
    return 0 if all(r.passed for r in rows) else 1
