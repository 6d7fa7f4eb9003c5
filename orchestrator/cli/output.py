"""How the API commands print: aligned tables of cells, times and costs, or the raw JSON answer.

Uses nothing of the other CLI modules; every `*_cmd` module prints through it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

Columns = list[tuple[str, str]]


def cell(value: Any, width: int = 48) -> str:
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def time_cell(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


def cost_cell(cost: dict | None) -> str:
    cost = cost or {}
    if cost.get("total_usd") is None:
        return "-"
    return f"${cost['total_usd']}" + (" (estimated)" if cost.get("estimated") else "")


def columns(spec: str) -> Columns:
    """`"HEADER=key ..."` to (header, key) pairs; keys ending in `_at` are shown as times."""
    return [(head, key) for head, _, key in (part.partition("=") for part in spec.split())]


def _field(item: dict, key: str) -> str:
    value = item.get(key)
    if key.endswith("_at"):
        return time_cell(value)
    return cost_cell(value) if key == "cost" else cell(value)


def table(cols: Columns, items: list[dict], indent: str = "") -> None:
    cells = [[h for h, _ in cols], *[[_field(item, key) for _, key in cols] for item in items]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for row in cells:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_answer(args: argparse.Namespace, answer: Any, human: Callable[[Any], None]) -> None:
    """The answer as indented JSON with `--json`, else as `human` prints it."""
    if getattr(args, "json", False):
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        human(answer)
