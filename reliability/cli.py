"""`python -m reliability [--quick] [--json PATH] [scenario ...]`: run the scenarios, print the table
(requirement, figure, pass) and write every figure as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reliability import db_outage, faults, security, soak, temporal_kill, worker_kills
from reliability.report import Row, Setup, ToRows, no_refund_twice, table

RESUME_WITHIN_S = 15.0
TEMPORAL_RESUME_WITHIN_S = 30.0


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
        _unrecorded_row("worker-kill", r["model_requests"]),
    ]  # fmt: skip


def _unrecorded_row(scenario: str, m: dict[str, Any]) -> Row:
    return Row(scenario, "0 router requests reached the model unrecorded",
               f"{m['reached_model']} reached, {m['rows']} rows: {m['done']} done, {m['interrupted']} interrupted "
               f"(estimate), {m['sent']} sent; {m['missing']} missing, {m['unattributed']} unattributed",
               m["missing"] == 0 and m["unattributed"] == 0 and not m["model_log_full"])  # fmt: skip


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


def _malformed_row(name: str, case: dict[str, Any]) -> Row:
    """Completed, or failed with a reason: never running, never another state, never refunded twice."""
    [outcome] = case["outcomes"].values()
    status, error = outcome["status"], outcome["error"] or ""
    if status == "failed":
        # "step 'x' failed: the final answer did not match a.b.Model after ...: details" -> the reason
        reason = re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", error.split(" failed: ", 1)[-1]).split(": ")[0]
        what = f"failed ({reason[:80]})"
    else:
        what = status
    ok = (status == "completed" or (status == "failed" and bool(error))) and case["duplicate_refunds"] == 0
    return Row("model-faults",
               f"malformed output ({name.replace('_', ' ')}) for {faults.MALFORMED_TURNS} turns: completes or fails with a reason",
               f"{what} after {case['seconds']} s, {case['model_calls']} model calls, {case['refunds']} refunds",
               ok)  # fmt: skip


def _model_rows(r: dict[str, Any]) -> list[Row]:
    five, slow, bad = r["5xx"], r["timeout"], r["always_500"]
    return [
        Row("model-faults", "model answers 503 then 502: the task completes",
            f"{five['completed']}/{five['tasks']} completed", five["completed"] == five["tasks"]),
        Row("model-faults", "model slower than the router timeout once: the task completes",
            f"{slow['completed']}/{slow['tasks']} completed", slow["completed"] == slow["tasks"]),
        *(_malformed_row(name, case) for name, case in r["malformed"].items()),
        Row("model-faults", "model always answers 500: the task ends failed, nothing refunded",
            f"{'failed' if bad['failed'] else bad['other']} after {bad['seconds']} s, {bad['refunds']} refunds",
            bad["failed"] == 1 and bad["refunds"] == 0),
    ]  # fmt: skip


def _temporal(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = (
        {"kills": 1, "tasks": 3, "spacing": 10.0} if quick else {"kills": 5, "tasks": 30, "spacing": 20.0}
    )
    return size, lambda code: temporal_kill.run(**size, worker_code=code)


def _temporal_rows(r: dict[str, Any]) -> list[Row]:
    n, m = r["kills"], r["tasks"]
    chains = r["audit_chains"]
    broken = [f"{t} {v}" for t, v in chains.items() if not v.startswith("ok")]
    api = r["api_submit_after_restart_s"]
    return [
        Row("temporal-kill", f"all {m} refund tasks complete through {n} Temporal server SIGKILLs",
            f"{r['completed']}/{m} completed", r["completed"] == m),
        no_refund_twice("temporal-kill", r),
        Row("temporal-kill", "every audit chain verifies",
            "; ".join(broken) or f"{len(chains)} chains, {sum(int(v.split()[1]) for v in chains.values())} events verified",
            r["audit_ok"]),
        Row("temporal-kill", f"tasks move within {TEMPORAL_RESUME_WITHIN_S:.0f} s of Temporal being back (same worker process)",
            f"longest {r['longest_stall_after_temporal_ready_s']} s ({r['tasks_in_flight_at_kills']} in flight, "
            f"{r['in_flight_never_moved']} never moved, {r.get('in_flight_closed_before_kill', 0)} ended before the kill)",
            r["longest_stall_after_temporal_ready_s"] <= TEMPORAL_RESUME_WITHIN_S
            and r["in_flight_never_moved"] == 0 and r["worker_same_process"]),
        Row("temporal-kill", "the API takes new tasks right after each restart (same API process)",
            f"longest submit {max(api, default=0.0)} s, {r['api_refusals_after_restart']} refused",
            len(api) == n and r["api_refusals_after_restart"] == 0 and r["api_same_process"]),
        _unrecorded_row("temporal-kill", r["model_requests"]),
    ]  # fmt: skip


def _soak(quick: bool) -> tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]:
    size: dict[str, Any] = (
        {"duration": 120.0, "every": 4.0, "sample_every": 10.0}
        if quick
        else {"duration": 1800.0, "every": 4.0, "sample_every": 30.0}
    )
    return size, lambda code: soak.run(**size, worker_code=code)


def _soak_rows(r: dict[str, Any]) -> list[Row]:
    minutes = r["duration_s"] / 60
    e2e = r["e2e_s"]
    approved = r["decisions"].get("approved", 0)
    rows = [
        Row("soak", f"no task lost: one refund every {r['every_s']:g} s for {minutes:g} min all complete",
            f"{r['completed']}/{r['planned']} completed, {len(r['submit_errors'])} refused at submit",
            r["completed"] == r["submitted"] == r["planned"]),
        no_refund_twice("soak", r),
    ]  # fmt: skip
    for name, m in r["rss"].items():
        rows.append(Row("soak", f"{name} RSS flat: last-quarter median <= {soak.RSS_GROWTH_LIMIT}x second-quarter",
                        f"{m['q2_median_mb']} -> {m['q4_median_mb']} MiB (x{m['ratio']}, {len(r['rss_mb'][name])} samples)",
                        m["flat"]))  # fmt: skip
    chains = r["audit_chains"]
    rows += [
        Row("soak", "every audit chain verifies",
            f"{len(chains)} chains, {sum(int(v.split()[1]) for v in chains.values() if v.startswith('ok'))} events verified",
            r["audit_ok"]),
        Row("soak", "checkpointed tasks decided over the API by a second client; e2e printed",
            f"{approved}/{r['checkpointed']} approved; e2e p50/p95 auto {e2e['auto']['p50']}/{e2e['auto']['p95']} s, "
            f"checkpointed {e2e['checkpointed']['p50']}/{e2e['checkpointed']['p95']} s",
            approved >= r["checkpointed"]),
    ]  # fmt: skip
    return rows


SCENARIOS: dict[str, tuple[Setup, ToRows]] = {
    "worker-kill": (_kills, _kills_rows),
    "temporal-kill": (_temporal, _temporal_rows),
    "postgres-outage": (_db, _db_rows),
    "router-down": (_router, _router_rows),
    "model-faults": (_model, _model_rows),
    "soak": (_soak, _soak_rows),
    **security.SCENARIOS,  # cross-tenant replay, CSRF sweep, schemathesis over the live API
}


async def run(
    names: list[str],
    quick: bool,
    worker_code: Path | None = None,
    sizes: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """`sizes` overrides some sizes of a scenario (the test in `make test` runs even smaller ones)."""
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for name in names:
        setup, to_rows = SCENARIOS[name]
        size, scenario = setup(quick)
        size.update((sizes or {}).get(name, {}))  # the scenario reads its size when it starts
        started = time.monotonic()
        print(f"running {name} {size} ...", file=sys.stderr, flush=True)  # noqa: T201 - progress of a CLI
        try:
            result = await scenario(worker_code)
        except Exception as exc:  # one broken scenario must not hide the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append(Row(name, "the scenario runs", result["error"][:120], False))
        else:
            try:
                rows.extend(to_rows(result))
            except Exception as exc:  # the figures are still written to the JSON
                rows.append(Row(name, "the scenario's rows", f"{type(exc).__name__}: {exc}"[:120], False))
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
