"""Limits on what a request may carry, shared by the request models and the HTTP edges.

JSON values are measured without recursion, so a hostile value cannot exhaust the stack while it
is being measured.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32  # levels of nesting of structured input (`data`, `edited_args`)
NUL_MESSAGE = "contains a NUL character (U+0000), which text cannot hold; remove it"
MAX_OFFSET = 1_000_000_000  # list offsets: far beyond any tenant's rows, far within a 64-bit integer


def json_depth(value: Any) -> int:
    """Levels of nesting of a JSON value: a scalar is 0, `{}` and `[]` are 1, `{"a": []}` is 2."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = [*item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def has_nul(value: Any) -> bool:
    """Whether any string in a JSON value (keys included) contains U+0000."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False

