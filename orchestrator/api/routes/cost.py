"""/api/cost: cost per resolved task (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["cost"])
