"""A bounded soak: refund tasks at a steady rate for a fixed time, half of them auto-approved and
half stopping at a checkpoint that an approver (a second client, Avery, over the API) decides.

Requirements: no task is lost (every submitted task completes), the worker's and the API's
resident memory stays flat, and every audit chain verifies. End-to-end times (submitted to ended,
from the task rows) are printed, not required.

Memory criterion: RSS of each process group is sampled every `sample_every` seconds; the median of
the last quarter of the samples must be within 1.25x of the median of the second quarter (the first
quarter is warm-up: imports, caches, connection pools filling).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from orchestrator.models import as_utc
from reliability.stack import CHECKPOINTED_TEXT, REFUND_TEXT, Stack

RSS_GROWTH_LIMIT = 1.25
APPROVER = "avery@acme.example"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 2)


def flat(samples: list[float]) -> dict[str, Any]:
    """Second-quarter and last-quarter medians of the samples, and whether they stay within the limit."""
    n = len(samples)
    q = max(1, n // 4)
    second = samples[q : 2 * q] or samples[:1]
    last = samples[-q:]
    m2, m4 = statistics.median(second), statistics.median(last)
    ratio = round(m4 / m2, 3) if m2 else 0.0
    return {
        "q2_median_mb": m2,
        "q4_median_mb": m4,
        "ratio": ratio,
        "flat": bool(m2) and ratio <= RSS_GROWTH_LIMIT,
    }


async def _approver(stack: Stack, stop: asyncio.Event, decided: dict[str, int]) -> None:
    """Avery's client: every second, approve every open checkpoint."""
    headers = {"Authorization": f"Bearer {stack.tokens[APPROVER]}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{stack.settings.api_port}", headers=headers, timeout=30
    ) as api:
        while not stop.is_set():
            try:
                r = await api.get("/api/checkpoints", params={"status": "open", "mine": "true"})
                r.raise_for_status()
                for cp in r.json()["items"]:
                    d = await api.post(f"/api/checkpoints/{cp['id']}/decision",
                                       json={"decision": "approve", "comment": "soak: checked"})  # fmt: skip
                    key = "approved" if d.status_code in (200, 202) else f"http_{d.status_code}"
                    decided[key] = decided.get(key, 0) + 1
            except httpx.HTTPError as exc:
                decided[type(exc).__name__] = decided.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(1.0)


async def run(
    *, duration: float, every: float, sample_every: float = 30.0, worker_code: Path | None = None
) -> dict[str, Any]:
    stack = Stack(worker_code=worker_code)
    rss: dict[str, list[float]] = {"worker": [], "api": []}
    submit_errors: list[str] = []
    try:
        await stack.start()
        stop = asyncio.Event()
        decided: dict[str, int] = {}
        approver = asyncio.create_task(_approver(stack, stop, decided))

        async def sampler() -> None:
            while not stop.is_set():
                for name in rss:
                    rss[name].append(stack.rss_mb(name))
                try:
                    await asyncio.wait_for(stop.wait(), sample_every)
                except TimeoutError:
                    pass

        sampling = asyncio.create_task(sampler())
        n = int(duration // every)
        orders = stack.add_orders(n)
        kinds: dict[str, str] = {}
        started = time.monotonic()
        for i, order in enumerate(orders):
            await asyncio.sleep(max(0.0, started + i * every - time.monotonic()))
            kind = "checkpointed" if i % 2 else "auto"
            try:
                [task_id] = await stack.submit_refunds(
                    [order], text=CHECKPOINTED_TEXT if kind == "checkpointed" else REFUND_TEXT
                )
                kinds[task_id] = kind
            except httpx.HTTPError as exc:
                submit_errors.append(f"{type(exc).__name__}: {exc}"[:200])
        submitting = time.monotonic() - started
        ids = list(kinds)
        ended = await stack.wait_ended(ids, 300)
        stop.set()
        await asyncio.gather(approver, sampling)
        rows = stack.task_rows(ids)
        e2e: dict[str, list[float]] = {"auto": [], "checkpointed": []}
        for task_id, row in rows.items():
            if row.ended_at is not None and row.status == "completed":
                e2e[kinds[task_id]].append((as_utc(row.ended_at) - as_utc(row.created_at)).total_seconds())
        refunds = stack.refunds_per_task(ids)
        chains = stack.audit_chains()
        everything = e2e["auto"] + e2e["checkpointed"]
        return {
            "duration_s": duration,
            "submitting_s": round(submitting, 1),
            "every_s": every,
            "planned": n,
            "submitted": len(ids),
            "submit_errors": submit_errors,
            "completed": sum(1 for s in ended.values() if s == "completed"),
            "not_completed": {i: s for i, s in ended.items() if s != "completed"},
            "checkpointed": sum(1 for k in kinds.values() if k == "checkpointed"),
            "decisions": decided,
            "duplicate_refunds": sum(max(0, c - 1) for c in refunds.values()),
            "refunds": sum(refunds.values()),
            "audit_chains": chains,
            "audit_ok": bool(chains) and all(v.startswith("ok") for v in chains.values()),
            "e2e_s": {
                kind: {
                    "p50": percentile(v, 50),
                    "p95": percentile(v, 95),
                    "max": round(max(v, default=0.0), 2),
                }
                for kind, v in {**e2e, "all": everything}.items()
            },
            "rss_sample_every_s": sample_every,
            "rss_mb": rss,
            "rss": {name: flat(samples) for name, samples in rss.items() if samples},
            "logs": str(stack.root / "logs"),
        }
    finally:
        await stack.stop()
