"""What every scenario reports: one row per requirement (requirement, figure, pass), and how a
scenario plugs into the runner (`Scenario`: a setup that picks its sizes and a row builder)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# setup(quick) -> (the sizes it will run, a coroutine factory taking the worker's code folder)
Setup = Callable[[bool], tuple[dict[str, Any], Callable[[Path | None], Awaitable[dict[str, Any]]]]]
ToRows = Callable[[dict[str, Any]], list["Row"]]


@dataclass
class Row:
    scenario: str
    requirement: str
    figure: str
    passed: bool


def no_refund_twice(scenario: str, r: dict[str, Any]) -> Row:
    """The row every scenario that issues refunds prints: the ledger holds each refund once."""
    return Row(
        scenario,
        "no refund issued twice",
        f"{r['duplicate_refunds']} duplicates",
        r["duplicate_refunds"] == 0,
    )


def table(rows: list[Row]) -> str:
    head = ("scenario", "requirement", "figure", "pass")
    cells = [head, *((r.scenario, r.requirement, r.figure, "PASS" if r.passed else "FAIL") for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
