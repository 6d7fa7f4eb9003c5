"""Figures 2 and 3 on one live stack on PostgreSQL (reliability/stack.py: Temporal dev server, demo
model, LiteLLM, one worker, the API; the database is one of our own on the shared server).

The bench plays requester and approver, as bench.compare does: refunds of 150 EUR on fresh 600 EUR
orders (one approver), submitted through `POST /api/tasks`; one SELECT every `POLL` seconds finds
the tasks whose checkpoint opened and the tasks that ended, and the decision goes through
`POST /api/checkpoints/{id}/decision`.

- audit:  `--audit-tasks` tasks, `--in-flight` (20) at a time, each submitted, approved as soon as
          its checkpoint opens and awaited to its end. Audit events/s = the `acme` tenant's audit
          head seq after minus before, over the wall time. Then every tenant's chain is verified.
- parked: `--parked` tasks brought to their checkpoint (`--in-flight` at a time on their way
          there, so the stack runs at the concurrency it is built for) and left waiting; worker RSS
          is read from /proc; then all are approved, `--in-flight` at a time (a decision, then that
          task's end), approval -> completion = the task row's `ended_at` (written by the worker)
          minus the moment the decision was sent. Worker RSS again after.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.big.common import TERMINAL, Database, summary_ms
from orchestrator.db import session_scope
from orchestrator.demo.catalog.tables import DemoOrder
from orchestrator.demo.devstack.processes import ManagedProcess
from reliability.stack import Stack

TEXT = "Order {order}: refund 150 EUR, the parcel was lost."  # 100..500 EUR: one approver
POLL = 0.1


class BigStack(Stack):
    """reliability's Stack, with the API (not only the worker) run from `code` when given."""

    def __init__(self, database_url: str, code: Path | None) -> None:
        super().__init__(database_url=database_url, worker_code=code)
        self.code = code

    def _child(self, command: str, *, ready_url: str | None = None, **extra: str) -> ManagedProcess:
        proc = super()._child(command, ready_url=ready_url, **extra)
        if self.code is not None and command != "worker":
            proc.cwd = self.code
            proc.env = {**(proc.env or {}), "PYTHONPATH": str(self.code)}
        return proc


class Driver:
    """Submits refunds, watches the database for open checkpoints and ended tasks, approves."""

    def __init__(self, stack: Stack, tokens: dict[str, str]) -> None:
        self.stack = stack
        self.api = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{stack.settings.api_port}", timeout=120, trust_env=False
        )
        self.requester = {"Authorization": f"Bearer {tokens['riley@acme.example']}"}
        self.approver = {"Authorization": f"Bearer {tokens['avery@acme.example']}"}
        self.admin = {"Authorization": f"Bearer {tokens['ada@acme.example']}"}
        self.want_open: dict[str, asyncio.Future[str]] = {}
        self.want_end: dict[str, asyncio.Future[tuple[str, datetime]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.orders = 0

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        await self.api.aclose()

    def _new_order(self) -> str:
        self.orders += 1
        order = f"ORD-{50_000_000 + self.orders:08d}"  # the lookup tool takes 4 to 8 digits
        assert self.stack.engine is not None
        with session_scope(self.stack.engine) as session:
            session.add(DemoOrder(id=order, tenant_id="acme", customer="C", email="c@example.com",
                                  amount=Decimal("600.00"), currency="EUR", status="delivered"))  # fmt: skip
        return order

    async def submit(self) -> str:
        order = await asyncio.to_thread(self._new_order)
        r = await self.api.post(
            "/api/tasks",
            json={"workflow": "refund_request@1", "input": TEXT.format(order=order)},
            headers=self.requester,
        )
        r.raise_for_status()
        return str(r.json()["id"])

    async def allow_spend(self, limit_usd: str) -> None:
        """The demo tenant's monthly budget ($100) stops a refund run of a few thousand tasks (about
        1 cent each) at its last model call: the bench sets it, as an admin would, through the API."""
        r = await self.api.put(
            "/api/budgets/tenant_month", json={"limit_usd": limit_usd}, headers=self.admin
        )
        r.raise_for_status()

    async def decide(self, checkpoint_id: str) -> None:
        for attempt in range(5):
            r = await self.api.post(
                f"/api/checkpoints/{checkpoint_id}/decision",
                json={"decision": "approve"},
                headers=self.approver,
            )
            if r.status_code < 500:
                r.raise_for_status()
                return
            await asyncio.sleep(1 + attempt)
        r.raise_for_status()

    async def opened(self, task_id: str) -> str:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.want_open[task_id] = fut
        self._ensure_poller()
        return await fut

    async def ended(self, task_id: str) -> tuple[str, datetime]:
        fut: asyncio.Future[tuple[str, datetime]] = asyncio.get_running_loop().create_future()
        self.want_end[task_id] = fut
        self._ensure_poller()
        return await fut

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())

    def _query(self, opening: list[str], ending: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
        assert self.stack.engine is not None
        with self.stack.engine.connect() as conn:
            opened = {}
            if opening:
                opened = dict(
                    conn.execute(
                        text(
                            "SELECT task_id, id FROM checkpoint WHERE status = 'open' AND task_id = ANY(:ids)"
                        ),
                        {"ids": opening},
                    ).all()
                )
                # a task that ended before any checkpoint opened (it should not) must not hang the bench
                for tid, status in conn.execute(
                    text("SELECT id, status FROM task WHERE id = ANY(:ids) AND status = ANY(:t)"),
                    {"ids": [i for i in opening if i not in opened], "t": list(TERMINAL)},
                ).all():
                    opened[tid] = f"!{status}"
            ended = {}
            if ending:
                ended = {
                    tid: (status, at)
                    for tid, status, at in conn.execute(
                        text(
                            "SELECT id, status, ended_at FROM task WHERE id = ANY(:ids) AND status = ANY(:t)"
                        ),
                        {"ids": ending, "t": list(TERMINAL)},
                    ).all()
                }
        return opened, ended

    async def _poll(self) -> None:
        while self.want_open or self.want_end:
            try:
                opened, ended = await asyncio.to_thread(
                    self._query, list(self.want_open), list(self.want_end)
                )
            except Exception as exc:  # a slow answer under load: poll again
                print(f"  (poll: {exc!r})", file=sys.stderr)
                opened, ended = {}, {}
            for tid, cp in opened.items():
                fut = self.want_open.pop(tid, None)
                if fut is not None and not fut.done():
                    fut.set_result(cp)
            for tid, row in ended.items():
                fut2 = self.want_end.pop(tid, None)
                if fut2 is not None and not fut2.done():
                    fut2.set_result(row)
            await asyncio.sleep(POLL)

    def audit_seq(self, tenant: str = "acme") -> int:
        assert self.stack.engine is not None
        with self.stack.engine.connect() as conn:
            seq = conn.execute(
                text("SELECT seq FROM audit_head WHERE tenant_id = :t"), {"t": tenant}
            ).scalar()
        return int(seq or 0)


async def audit_rate(stack: Stack, driver: Driver, n: int, in_flight: int) -> dict[str, Any]:
    """n tasks, in_flight at a time, each approved as soon as its checkpoint opens."""
    sem = asyncio.Semaphore(in_flight)
    statuses: dict[str, str] = {}

    async def one() -> None:
        async with sem:
            tid = await driver.submit()
            cp = await driver.opened(tid)
            if not cp.startswith("!"):
                await driver.decide(cp)
            statuses[tid] = (await driver.ended(tid))[0]

    before = await asyncio.to_thread(driver.audit_seq)
    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    wall = time.monotonic() - began
    after = await asyncio.to_thread(driver.audit_seq)
    chains = await asyncio.to_thread(stack.audit_chains)
    events = after - before
    return {
        "tasks": n,
        "in_flight": in_flight,
        "wall_s": round(wall, 1),
        "audit_events": events,
        "audit_events_per_s": round(events / wall, 1),
        "audit_events_per_task": round(events / n, 1),
        "tasks_per_s": round(n / wall, 2),
        "statuses": _count(statuses.values()),
        "chains": chains,
        "chains_ok": all(v.startswith("ok") for v in chains.values()),
    }


async def parked(stack: Stack, driver: Driver, n: int, in_flight: int) -> dict[str, Any]:
    """n tasks parked at their checkpoint, RSS read, then all approved in_flight at a time."""
    sem = asyncio.Semaphore(in_flight)
    checkpoints: dict[str, str] = {}
    progress = {"parked": 0}
    began = time.monotonic()

    async def park() -> None:
        async with sem:
            tid = await driver.submit()
            checkpoints[tid] = await driver.opened(tid)
            progress["parked"] += 1
            if progress["parked"] % 100 == 0:
                print(
                    f"  parked: {progress['parked']}/{n} in {time.monotonic() - began:.0f} s", file=sys.stderr
                )

    rss_start = {p: stack.rss_mb(p) for p in ("worker", "api", "temporal")}
    await asyncio.gather(*(park() for _ in range(n)))
    park_s = time.monotonic() - began
    await asyncio.sleep(5)  # let the worker settle after the last task parked
    rss_parked = {p: stack.rss_mb(p) for p in ("worker", "api", "temporal")}
    not_parked = {t: c for t, c in checkpoints.items() if c.startswith("!")}
    print(f"  parked: {n - len(not_parked)} waiting after {park_s:.0f} s; worker RSS {rss_parked['worker']} MB; approving",
          file=sys.stderr)  # fmt: skip

    latencies: list[float] = []
    statuses: dict[str, str] = {}
    progress["done"] = 0
    approve_began = time.monotonic()

    async def approve(tid: str, cp: str) -> None:
        async with sem:
            sent = time.time()
            await driver.decide(cp)
            status, ended_at = await driver.ended(tid)
            statuses[tid] = status
            if status == "completed" and ended_at is not None:
                latencies.append(ended_at.timestamp() - sent)
            progress["done"] += 1
            if progress["done"] % 100 == 0:
                print(
                    f"  approved: {progress['done']}/{n} in {time.monotonic() - approve_began:.0f} s",
                    file=sys.stderr,
                )

    await asyncio.gather(*(approve(t, c) for t, c in checkpoints.items() if not c.startswith("!")))
    approve_s = time.monotonic() - approve_began
    await asyncio.sleep(2)
    rss_after = {p: stack.rss_mb(p) for p in ("worker", "api", "temporal")}
    refunds = await asyncio.to_thread(stack.refunds_per_task, list(checkpoints))
    return {
        "parked": n,
        "in_flight": in_flight,
        "park_s": round(park_s, 1),
        "waiting_at_checkpoint": n - len(not_parked),
        "ended_before_checkpoint": _count(c[1:] for c in not_parked.values()),
        "rss_mb_start": rss_start,
        "rss_mb_parked": rss_parked,
        "rss_mb_after": rss_after,
        "approve_s": round(approve_s, 1),
        "statuses": _count(statuses.values()),
        "all_completed": sum(1 for s in statuses.values() if s == "completed") == n,
        "refunds_not_once": sum(1 for c in refunds.values() if c != 1),
        "approval_to_completion": summary_ms(latencies),
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


async def run(args: Any, code: Path | None, figures: set[str]) -> dict[str, Any]:
    db = Database("bench_big_flow")
    db.create()
    stack = BigStack(db.url, code)
    result: dict[str, Any] = {"database": db.name}
    driver: Driver | None = None
    try:
        began = time.monotonic()
        await stack.start()
        print(f"  stack up on PostgreSQL ({db.name}) in {time.monotonic() - began:.0f} s", file=sys.stderr)
        driver = Driver(stack, stack.tokens)
        result["tenant_month_limit_usd"] = str(max(Decimal(100), Decimal("0.05") * (args.parked + args.audit_tasks + 1)))
        await driver.allow_spend(result["tenant_month_limit_usd"])
        warm = await audit_rate(stack, driver, 1, 1)  # LiteLLM's first calls are slow
        print(f"  warm-up: {warm['statuses']}", file=sys.stderr)
        if "audit" in figures:
            print(f"  audit: {args.audit_tasks} tasks, {args.in_flight} in flight", file=sys.stderr)
            result["audit"] = await audit_rate(stack, driver, args.audit_tasks, args.in_flight)
        if "parked" in figures:
            print(f"  parked: {args.parked} tasks", file=sys.stderr)
            result["parked"] = await parked(stack, driver, args.parked, args.in_flight)
            chains = await asyncio.to_thread(stack.audit_chains)
            result["parked"]["chains_ok"] = all(v.startswith("ok") for v in chains.values())
        result["worker_pids"] = stack.pids("worker")
        result["worker_rss_mb_end"] = stack.rss_mb("worker")
    finally:
        if driver is not None:
            await driver.close()
        await stack.stop()
        if args.keep_db:
            print(f"  database {db.name} kept; stack folder {stack.root}", file=sys.stderr)
        else:
            db.drop()
    return result
