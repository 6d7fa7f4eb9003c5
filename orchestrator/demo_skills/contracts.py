"""Demo skills (filled in by the sample catalog work)."""

from __future__ import annotations

from typing import Any

SKILLS: dict[str, Any] = {}
