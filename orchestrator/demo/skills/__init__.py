"""Deterministic behaviours of the demo model for the sample catalog's agents.

Each module exposes `SKILLS: dict[str, Skill]`, keyed by the `title` of the output JSON schema
the agent asks for (the pydantic model's name, e.g. "TriageResult"). A skill answers a request
body with a `Reply` (or None to fall back to the generic behaviour). Skills are pure: no I/O.
They read the request with :mod:`orchestrator.demo.chat` and never import this package's
``__init__`` or :mod:`orchestrator.demo.behaviour`, which dispatches to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.demo.skills import contracts, refund_email, research, support

Skill = Callable[[dict[str, Any]], Any]  # body -> Reply | None


def registry() -> dict[str, Skill]:
    skills: dict[str, Skill] = {}
    for module in (support, contracts, research, refund_email):
        skills.update(module.SKILLS)
    return skills
