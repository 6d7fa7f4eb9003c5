"""The router's upstream misbehaving (the demo model answering 5xx, or too slowly) and the router
itself down for a while. Transient faults must be ridden out; a model that always fails must end
the task `failed` (never hanging, never refunding)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from orchestrator.models import as_utc
from reliability.stack import Stack

FLAKY: list[dict[str, Any]] = [
    {"status": 503},
    {"status": 502},
    {"default": True},
]  # two 5xx answers, then normal ones

# Malformed answers, each given for MALFORMED_TURNS turns before the model answers normally again.
MALFORMED_TURNS = 2
MALFORMED: dict[str, dict[str, Any]] = {
    # issue_refund with arguments that are not JSON: governance must refuse it, nothing refunded
    "invalid_json_args": {
        "tool_calls": [{"name": "issue_refund", "arguments": '{"order_id": "ORD-1", "amount": '}]
    },
    # a tool the agent was never offered
    "unknown_tool": {
        "tool_calls": [{"name": "wire_money", "arguments": {"iban": "XX00", "amount": "40.00"}}]
    },
    "empty_content": {"content": ""},
    # prose where the agent expects a tool call (or the refund-decision JSON)
    "plain_text": {"content": "Sure! I have looked at the order and will refund it right away."},
}


async def _script(stack: Stack, key: str, steps: list[dict[str, Any]], repeat_last: bool = False) -> None:
    url = f"http://127.0.0.1:{stack.settings.demo_model_port}/_demo/scripts"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(url, json={"key": key, "responses": steps, "repeat_last": repeat_last})
        r.raise_for_status()


def _summary(stack: Stack, ids: list[str], ended: dict[str, str], took: float) -> dict[str, Any]:
    refunds = stack.refunds_per_task(ids)
    rows = stack.task_rows(ids)
    return {
        "outcomes": {
            i: {
                "status": ended[i],
                "outcome": rows[i].outcome,
                "error": rows[i].error,
                "output": (rows[i].output_json or "")[:300],
            }
            for i in ids
        },
        "tasks": len(ids),
        "completed": sum(1 for s in ended.values() if s == "completed"),
        "failed": sum(1 for s in ended.values() if s == "failed"),
        "other": {i: s for i, s in ended.items() if s not in ("completed", "failed")},
        "refunds": sum(refunds.values()),
        "duplicate_refunds": sum(max(0, n - 1) for n in refunds.values()),
        "seconds": round(took, 1),
    }


async def _calls(stack: Stack, key: str) -> int:
    url = f"http://127.0.0.1:{stack.settings.demo_model_port}/_demo/calls"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(url, params={"key": key})
        r.raise_for_status()
        return int(r.json()["count"])


async def _task_seconds(stack: Stack, task_id: str) -> float | None:
    row = stack.task_rows([task_id])[task_id]
    if row.ended_at is None:
        return None
    return round((as_utc(row.ended_at) - as_utc(row.created_at)).total_seconds(), 1)


async def model_faults(
    *, tasks: int, router_outage_limit: float = 30.0, worker_code: Path | None = None
) -> dict[str, Any]:
    """`tasks` refunds whose model answers 503 then 502 before answering; `tasks` whose model is
    slower than the router timeout once; one whose model always answers 500."""
    stack = Stack(
        worker_env={
            "FRONTDESK_ROUTER_TIMEOUT_SECONDS": "5",
            "FRONTDESK_ROUTER_OUTAGE_MAX_SECONDS": str(router_outage_limit),
        },
        worker_code=worker_code,
    )
    out: dict[str, Any] = {}
    try:
        await stack.start()
        cases: list[tuple[str, list[dict[str, Any]]]] = [
            ("5xx", FLAKY),
            (
                "timeout",
                [{"default": True, "delay": 8}, {"default": True}],
            ),  # once slower than the 5 s timeout
        ]
        for name, steps in cases:
            orders = stack.add_orders(tasks)
            keys = [f"[script:{name}-{secrets.token_hex(3)}]" for _ in orders]
            for key in keys:
                await _script(stack, key, steps)
            started = time.monotonic()
            ids = await stack.submit_refunds(orders, suffix=keys)
            ended = await stack.wait_ended(ids, 240)
            out[name] = _summary(stack, ids, ended, time.monotonic() - started)
        out["malformed"] = {}
        script_keys = {name: f"[script:{name}-{secrets.token_hex(3)}]" for name in MALFORMED}
        for name, key in script_keys.items():
            await _script(stack, key, [MALFORMED[name]] * MALFORMED_TURNS + [{"default": True}])
        # one task per kind, side by side
        orders = stack.add_orders(len(script_keys))
        started = time.monotonic()
        ids = await stack.submit_refunds(orders, suffix=list(script_keys.values()))
        ended = await stack.wait_ended(ids, 240)
        took = time.monotonic() - started
        for (name, key), task_id in zip(script_keys.items(), ids, strict=True):
            summary = _summary(stack, [task_id], {task_id: ended[task_id]}, took)
            summary["model_calls"] = await _calls(stack, key)
            summary["seconds"] = await _task_seconds(stack, task_id)
            out["malformed"][name] = summary
        orders = stack.add_orders(1)
        started = time.monotonic()
        ids = await stack.submit_refunds(orders, suffix=["[demo:fail-500]"])
        ended = await stack.wait_ended(ids, router_outage_limit + 240)
        out["always_500"] = _summary(stack, ids, ended, time.monotonic() - started)
        out["logs"] = str(stack.root / "logs")
        return out
    finally:
        await stack.stop()


async def router_down(*, tasks: int, down: float, worker_code: Path | None = None) -> dict[str, Any]:
    """Refund tasks submitted, the LiteLLM router stopped at once for `down` seconds, then started."""
    stack = Stack(worker_code=worker_code)
    try:
        await stack.start()
        router = stack.procs["router"]
        ids = await stack.submit_refunds(stack.add_orders(tasks))
        stopped = time.monotonic()
        await router.astop()
        await asyncio.sleep(down)
        await router.astart()
        outage = time.monotonic() - stopped
        ended = await stack.wait_ended(ids, 300)
        return {**_summary(stack, ids, ended, time.monotonic() - stopped), "router_down_s": round(outage, 1),
                "logs": str(stack.root / "logs")}  # fmt: skip
    finally:
        await stack.stop()
