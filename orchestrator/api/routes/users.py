"""/api/users: the tenant's people and their roles (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["users"])
