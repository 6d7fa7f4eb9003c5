"""Frontdesk against its floor: the same refund work on bare temporalio, measured side by side.

Starts one local stack (reliability/stack.py: Temporal dev server, demo model, LiteLLM proxy,
Frontdesk's worker and API, SQLite) plus the floor's worker (bench/floor) on the same Temporal
server, router, model and database, then runs refund tasks with one approval each on both,
interleaved (F, floor, floor, F, ...), so a machine shared with other work slows both alike:

* latency: one task at a time; per task the history (activities, workflow tasks, events, bytes),
  end to end with the approval wait excluded, and approval decision -> task completed;
* throughput: batches of N tasks with 20 in flight, alternating between the two;
* CPU per task: /proc utime+stime of each process group over the runs of each side (Frontdesk:
  worker + API; floor: its worker; the Temporal server's share is printed for both).

The approver is the bench: for Frontdesk it watches the checkpoint rows in the database (one
SELECT per interval for all waiting tasks, in the bench's own process) and POSTs the decision to the
API; for the floor it queries each waiting workflow and sends the decision as an update. Prints a markdown table (figure, Frontdesk, floor,
ratio, target from issue 12) and the activity breakdown of one Frontdesk task, and writes JSON
(.frontdesk/bench/compare.json). Asserts nothing.

Usage: `python -m bench.compare` (make bench), `--quick` (about 2 minutes), `--runs`, `--tasks`,
`--rounds`, `--in-flight`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory

from bench.floor import AWAITING_QUERY, DECIDE_UPDATE, TASK_QUEUE_PREFIX, WORKFLOW_NAME
from bench.floor.types import Decision, FloorInput
from orchestrator.db import session_scope
from orchestrator.demo import seed
from orchestrator.demo.devstack.processes import ManagedProcess
from orchestrator.models import Checkpoint
from reliability.stack import REPO, Stack

TEXT = "Order {order}: refund 150 EUR, the parcel was lost."  # 100..500 EUR: one approver
OUT = REPO / ".frontdesk" / "bench" / "compare.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
FD, FLOOR = "frontdesk", "floor"
NOT_MEASURED = [
    ("10,000 tasks parked at a checkpoint: worker RSS",
     "<= 500 MB, all 10,000 approved and completed, approval -> completion p50 printed"),
    ("task list / task detail p95, 100,000 tasks in PostgreSQL, 50 concurrent readers", "<= 50 ms"),
    ("audit events/s in one tenant, 20 tasks in flight on PostgreSQL", "printed, chain still verifying"),
]  # fmt: skip


# --- CPU from /proc -------------------------------------------------------------------------------


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group (ManagedProcess starts
    each child in its own group, so helpers it spawns are counted too)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5 of stat: pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


class Cpu:
    def __init__(self, procs: dict[str, ManagedProcess]) -> None:
        self.pgids = {name: p.pid for name, p in procs.items() if p.pid is not None}

    def snapshot(self) -> dict[str, float]:
        return {name: group_cpu(pgid) for name, pgid in self.pgids.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


# --- histories ------------------------------------------------------------------------------------


def _ts(event: Any) -> float:
    return float(event.event_time.ToDatetime().replace(tzinfo=UTC).timestamp())


@dataclass
class HistoryStats:
    activities: int
    workflow_tasks: int
    events: int
    bytes: int
    activity_seconds: float  # sum of the activities' own run time (started -> completed)
    approval_wait: float  # workflow idle at its approval until the decision's update arrived


def history_stats(history: WorkflowHistory) -> HistoryStats:
    events = list(history.events)
    started: dict[int, float] = {}
    run = 0.0
    wait = 0.0
    for i, e in enumerate(events):
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[e.activity_task_started_event_attributes.scheduled_event_id] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sid = e.activity_task_completed_event_attributes.scheduled_event_id
            run += _ts(e) - started.get(sid, _ts(e))
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED and not wait:
            # The update is carried by a workflow task: scheduled when it arrived. The workflow
            # had been idle since the event before that.
            j = i - 1
            while j > 0 and events[j].event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                j -= 1
            wait = max(0.0, _ts(events[j]) - _ts(events[j - 1]))
    return HistoryStats(
        activities=sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in events),
        workflow_tasks=sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events),
        events=len(events),
        bytes=History(events=events).ByteSize(),
        activity_seconds=run,
        approval_wait=wait,
    )


def activity_breakdown(history: WorkflowHistory) -> list[dict[str, Any]]:
    """The activities of one task in the order they were scheduled: name, input and result bytes,
    run time and the event ids (scheduled), so a reader can see which could share a round trip."""
    rows: dict[int, dict[str, Any]] = {}
    started: dict[int, float] = {}
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            rows[e.event_id] = {
                "event": e.event_id,
                "activity": a.activity_type.name,
                "input_bytes": sum(len(p.data) for p in a.input.payloads),
                "result_bytes": 0,
                "run_ms": None,
            }
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[e.activity_task_started_event_attributes.scheduled_event_id] = _ts(e)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a2 = e.activity_task_completed_event_attributes
            row = rows[a2.scheduled_event_id]
            row["result_bytes"] = sum(len(p.data) for p in a2.result.payloads)
            row["run_ms"] = round((_ts(e) - started[a2.scheduled_event_id]) * 1000, 1)
    return list(rows.values())


# --- the two sides --------------------------------------------------------------------------------


@dataclass
class Sample:
    side: str
    total: float  # submit sent -> result received (bench clock)
    decision_to_done: float  # decision sent -> result received
    stats: HistoryStats | None = None

    @property
    def e2e(self) -> float:
        assert self.stats is not None
        return self.total - self.stats.approval_wait


class Side:
    name = ""

    def __init__(self, stack: Stack, client: Client, poll: float) -> None:
        self.stack = stack
        self.client = client
        self.poll = poll
        self.waiters: dict[str, asyncio.Future[Any]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.polls = 0  # approver polls (Frontdesk: one SELECT; floor: one query per waiting task)

    async def submit(self, order: str) -> tuple[str, str]:  # (handle id for the poller, workflow id)
        raise NotImplementedError

    async def decide(self, key: str, opened: Any) -> None:
        raise NotImplementedError

    async def _poll_once(self) -> None:
        raise NotImplementedError

    async def _poll(self) -> None:
        while self.waiters:
            self.polls += 1 if self.name == FD else len(self.waiters)
            try:
                await self._poll_once()
            except Exception as exc:  # a slow or failed answer under load: poll again
                print(f"  ({self.name} poll: {exc!r})", file=sys.stderr)
            await asyncio.sleep(self.poll)
        self._poller = None

    async def wait_open(self, key: str) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[key] = fut
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        return await fut

    async def one(self, order: str, with_history: bool) -> Sample:
        sent = time.time()
        key, wf_id = await self.submit(order)
        opened = await self.wait_open(key)
        decided = time.time()
        await self.decide(key, opened)
        handle = self.client.get_workflow_handle(wf_id)
        await handle.result()
        done = time.time()
        sample = Sample(self.name, done - sent, done - decided)
        if with_history:
            sample.stats = history_stats(await handle.fetch_history())
        return sample


class Frontdesk(Side):
    name = FD

    def __init__(self, stack: Stack, client: Client, poll: float, tokens: dict[str, str]) -> None:
        super().__init__(stack, client, poll)
        self.api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.settings.api_port}", timeout=120, trust_env=False
        )
        self.requester = {"Authorization": f"Bearer {tokens['riley']}"}
        self.approver = {"Authorization": f"Bearer {tokens['avery']}"}

    async def submit(self, order: str) -> tuple[str, str]:
        r = await self.api.post(
            "/api/tasks",
            json={"workflow": "refund_request@1", "input": TEXT.format(order=order)},
            headers=self.requester,
        )
        r.raise_for_status()
        task_id = r.json()["id"]
        return task_id, f"task-{task_id}"

    async def _poll_once(self) -> None:
        # The bench watches Frontdesk's checkpoint rows in the database, so neither side's CPU pays
        # for an inbox that polls (the floor's waiting flag costs it a query per poll instead).
        def open_checkpoints(task_ids: list[str]) -> dict[str, str]:
            assert self.stack.engine is not None
            with session_scope(self.stack.engine) as session:
                rows = session.exec(
                    select(Checkpoint).where(
                        Checkpoint.status == "open",
                        Checkpoint.task_id.in_(task_ids),  # type: ignore[attr-defined]
                    )
                )
                return {cp.task_id: cp.id for cp in rows}

        for task_id, cp_id in (await asyncio.to_thread(open_checkpoints, list(self.waiters))).items():
            fut = self.waiters.pop(task_id, None)
            if fut is not None and not fut.done():
                fut.set_result(cp_id)

    async def decide(self, key: str, opened: Any) -> None:
        r = await self.api.post(
            f"/api/checkpoints/{opened}/decision", json={"decision": "approve"}, headers=self.approver
        )
        r.raise_for_status()


class Floor(Side):
    name = FLOOR

    def __init__(self, stack: Stack, client: Client, poll: float, queue: str) -> None:
        super().__init__(stack, client, poll)
        self.queue = queue

    async def submit(self, order: str) -> tuple[str, str]:
        wf_id = f"floor-{secrets.token_hex(8)}"
        await self.client.start_workflow(
            WORKFLOW_NAME,
            FloorInput(wf_id, "acme", TEXT.format(order=order)),
            id=wf_id,
            task_queue=self.queue,
        )
        return wf_id, wf_id

    async def _poll_once(self) -> None:
        async def check(wf_id: str) -> None:
            if await self.client.get_workflow_handle(wf_id).query(AWAITING_QUERY, result_type=bool):
                fut = self.waiters.pop(wf_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(True)

        # A workflow whose first workflow task has not run yet cannot answer: asked again next time.
        await asyncio.gather(*(check(w) for w in list(self.waiters)), return_exceptions=True)

    async def decide(self, key: str, opened: Any) -> None:
        await self.client.get_workflow_handle(key).execute_update(
            DECIDE_UPDATE, Decision(approve=True, by="bench"), result_type=str
        )


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Tally:
    samples: list[Sample] = field(default_factory=list)
    cpu: Counter[str] = field(default_factory=Counter)  # process -> CPU seconds over this side's runs
    cpu_tasks: int = 0
    batch_seconds: float = 0.0
    batch_tasks: int = 0


async def timed_cpu(cpu: Cpu, tally: Tally, n: int, work: Any) -> Any:
    before = cpu.snapshot()
    result = await work
    tally.cpu.update(cpu_delta(before, cpu.snapshot()))
    tally.cpu_tasks += n
    return result


async def batch(side: Side, orders: list[str], in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one(order: str) -> None:
        async with gate:
            await side.one(order, with_history=False)

    began = time.monotonic()
    await asyncio.gather(*(one(o) for o in orders))
    return time.monotonic() - began


async def start_floor_worker(stack: Stack, queue: str) -> ManagedProcess:
    log = stack.root / "logs" / "floor-worker.log"
    env = {**os.environ, "FLOOR_ROUTER_KEY": stack.settings.router_api_key, "PYTHONUNBUFFERED": "1"}
    proc = ManagedProcess(
        name="floor-worker",
        argv=[sys.executable, "-m", "bench.floor.worker", "--temporal", stack.dev.temporal_address,
              "--task-queue", queue, "--router-url", stack.dev.router_url,
              "--database-url", stack.settings.effective_database_url],
        env=env,
        cwd=REPO,
        log_path=log,
        ready_check=lambda: log.exists() and "floor worker polling" in log.read_text(errors="replace"),
        ready_timeout=60,
    )  # fmt: skip
    await proc.astart()
    return proc


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = Stack()
    began = time.monotonic()
    await stack.start()
    queue = f"{TASK_QUEUE_PREFIX}{secrets.token_hex(3)}"
    stack.procs["floor-worker"] = await start_floor_worker(stack, queue)
    try:
        info = await asyncio.to_thread(seed.prepare_database, stack.settings)
        tokens = {email.split("@")[0]: token for email, token in info.tokens}
        assert stack.client is not None
        sides: dict[str, Side] = {
            FD: Frontdesk(stack, stack.client, args.poll, tokens),
            FLOOR: Floor(stack, stack.client, args.poll, queue),
        }
        tallies = {FD: Tally(), FLOOR: Tally()}
        cpu = Cpu(stack.procs)
        print(f"stack up in {time.monotonic() - began:.0f} s; warming up", file=sys.stderr)
        for side in sides.values():  # LiteLLM's first calls are slow
            for order in stack.add_orders(2):
                await side.one(order, with_history=False)

        print(f"latency: {args.runs} tasks each, one at a time, interleaved", file=sys.stderr)
        breakdown: list[dict[str, Any]] = []
        for i in range(args.runs):
            order_of = [FD, FLOOR] if i % 2 == 0 else [FLOOR, FD]  # ABBA: neither side always goes first
            for name in order_of:
                [order] = stack.add_orders(1)
                s = await timed_cpu(cpu, tallies[name], 1, sides[name].one(order, with_history=True))
                tallies[name].samples.append(s)
        fd_id = None
        if tallies[FD].samples:
            # one more Frontdesk task, only for the breakdown of its activities
            [order] = stack.add_orders(1)
            key, fd_id = await sides[FD].submit(order)
            cp = await sides[FD].wait_open(key)
            await sides[FD].decide(key, cp)
            handle = stack.client.get_workflow_handle(fd_id)
            await handle.result()
            breakdown = activity_breakdown(await handle.fetch_history())

        print(f"throughput: {args.rounds} rounds of {args.tasks} tasks each, {args.in_flight} in flight",
              file=sys.stderr)  # fmt: skip
        for r in range(args.rounds):
            for name in [FD, FLOOR] if r % 2 == 0 else [FLOOR, FD]:
                orders = stack.add_orders(args.tasks)
                secs = await timed_cpu(
                    cpu, tallies[name], args.tasks, batch(sides[name], orders, args.in_flight)
                )
                tallies[name].batch_seconds += secs
                tallies[name].batch_tasks += args.tasks
                print(f"  {name}: {args.tasks} tasks in {secs:.1f} s", file=sys.stderr)
        await sides[FD].api.aclose()  # type: ignore[attr-defined]
    finally:
        await stack.stop()
    result = report(args, tallies, breakdown)
    result["approver_polls"] = {name: side.polls for name, side in sides.items()}
    return result


# --- the report -----------------------------------------------------------------------------------


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(
    args: argparse.Namespace, tallies: dict[str, Tally], breakdown: list[dict[str, Any]]
) -> dict[str, Any]:
    def med(name: str, attr: str) -> float | None:
        vals = [getattr(s.stats, attr) for s in tallies[name].samples if s.stats is not None]
        return p50(vals)

    def per_task_ms(name: str, procs: list[str]) -> float | None:
        t = tallies[name]
        return sum(t.cpu[p] for p in procs) / t.cpu_tasks * 1000 if t.cpu_tasks else None

    def rate(name: str) -> float | None:
        t = tallies[name]
        return t.batch_tasks / t.batch_seconds if t.batch_seconds else None

    rows: list[dict[str, Any]] = []

    def row(
        figure: str, fd: float | None, fl: float | None, unit: str, target: str, fmt: str = ".0f"
    ) -> None:
        ratio = fd / fl if fd is not None and fl else None
        rows.append({"figure": figure, "frontdesk": fd, "floor": fl, "unit": unit,
                     "ratio": ratio, "target": target, "fmt": fmt})  # fmt: skip

    row("activities per refund task", med(FD, "activities"), med(FLOOR, "activities"), "", "<= 8 (absolute)")
    row("workflow tasks per refund task", med(FD, "workflow_tasks"), med(FLOOR, "workflow_tasks"), "", "-")
    row("history events per refund task", med(FD, "events"), med(FLOOR, "events"), "", "<= 1.3x")
    kb = [(med(n, "bytes") or 0) / 1000 for n in (FD, FLOOR)]
    row("history bytes per refund task", kb[0], kb[1], "KB", "<= 2x", ".1f")
    ms = {n: [s.e2e * 1000 for s in tallies[n].samples if s.stats] for n in (FD, FLOOR)}
    row("end to end p50, approval wait excluded", p50(ms[FD]), p50(ms[FLOOR]), "ms", "<= 1.3x")
    dec = {n: [s.decision_to_done * 1000 for s in tallies[n].samples] for n in (FD, FLOOR)}
    row("approval decision -> task completed p50", p50(dec[FD]), p50(dec[FLOOR]), "ms", "<= 1.3x")
    act = [(med(n, "activity_seconds") or 0) * 1000 for n in (FD, FLOOR)]
    row("activities' own run time per task p50", act[0], act[1], "ms", "-")
    row(f"tasks/s with {args.in_flight} in flight", rate(FD), rate(FLOOR), "/s", ">= 0.8x", ".2f")
    row("CPU per task, worker + API (floor: worker)", per_task_ms(FD, ["worker", "api"]),
        per_task_ms(FLOOR, ["floor-worker"]), "ms", "<= 1.5x")  # fmt: skip
    row(
        "CPU per task, worker alone",
        per_task_ms(FD, ["worker"]),
        per_task_ms(FLOOR, ["floor-worker"]),
        "ms",
        "-",
    )
    row(
        "CPU per task, Temporal server",
        per_task_ms(FD, ["temporal"]),
        per_task_ms(FLOOR, ["temporal"]),
        "ms",
        "-",
    )
    everything = sorted(set(tallies[FD].cpu) | set(tallies[FLOOR].cpu))
    row(
        "CPU per task, all stack processes",
        per_task_ms(FD, everything),
        per_task_ms(FLOOR, everything),
        "ms",
        "-",
    )

    counts = Counter(r["activity"] for r in breakdown)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "note": "shared with other work; ratios are of interleaved runs in one stack"},
        "sizes": {"runs": args.runs, "tasks": args.tasks, "rounds": args.rounds, "in_flight": args.in_flight,
                  "poll_seconds": args.poll},
        "rows": rows,
        "not_measured": [{"figure": f, "target": t} for f, t in NOT_MEASURED],
        "frontdesk_activities": breakdown,
        "frontdesk_activity_counts": dict(counts),
        "cpu_seconds": {n: dict(t.cpu) for n, t in tallies.items()},
        "cpu_tasks": {n: t.cpu_tasks for n, t in tallies.items()},
        "samples": {n: [{**asdict(s), "e2e": s.e2e if s.stats else None} for s in t.samples]
                    for n, t in tallies.items()},
    }  # fmt: skip


def _fmt(value: float | None, fmt: str, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:{fmt}}" + (f" {unit}" if unit else "")


def markdown(result: dict[str, Any]) -> str:
    lines = ["| figure | Frontdesk | floor | ratio | target |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"| {r['figure']} | {_fmt(r['frontdesk'], r['fmt'], r['unit'])} | "
                     f"{_fmt(r['floor'], r['fmt'], r['unit'])} | {ratio} | {r['target']} |")  # fmt: skip
    for r in result["not_measured"]:
        lines.append(f"| {r['figure']} | `python -m bench.big` (docs/performance-scale.md) | - | - | {r['target']} |")
    return "\n".join(lines)


def breakdown_table(result: dict[str, Any]) -> str:
    lines = ["| # | activity | input bytes | result bytes | run ms |", "|---|---|---|---|---|"]
    for i, a in enumerate(result["frontdesk_activities"], start=1):
        lines.append(f"| {i} | {a['activity']} | {a['input_bytes']} | {a['result_bytes']} | {a['run_ms']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: about 2 minutes")
    parser.add_argument(
        "--runs", type=int, help="latency tasks per side, one at a time (default 20; quick 6)"
    )
    parser.add_argument("--tasks", type=int, help="tasks per throughput batch (default 40; quick 20)")
    parser.add_argument("--rounds", type=int, help="throughput batches per side (default 2; quick 1)")
    parser.add_argument("--in-flight", type=int, default=20, help="tasks in flight in a batch (default 20)")
    parser.add_argument(
        "--poll", type=float, default=0.05, help="the approver's poll interval, s (default 0.05)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help=f"the JSON file (default {OUT.relative_to(REPO)})"
    )
    args = parser.parse_args()
    defaults = {"runs": (20, 6), "tasks": (40, 20), "rounds": (2, 1)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(
        f"\nFrontdesk vs the floor (bare temporalio), {result['when']}, {os.cpu_count()} CPUs, shared machine"
    )
    print(f"sizes: {result['sizes']}\n")
    print(markdown(result))
    print(f"\nOne Frontdesk refund task's activities, in order ({len(result['frontdesk_activities'])}):\n")
    print(breakdown_table(result))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
