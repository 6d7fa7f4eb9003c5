"""Helpers shared by the figures: percentiles, a database of our own on the shared PostgreSQL,
and a snapshot of the code the children run."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[2]
PG_HOST = "127.0.0.1:5432"
PG_ADMIN = f"postgresql://postgres@{PG_HOST}/test"
TERMINAL = ("completed", "failed", "cancelled", "rejected")


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    out: dict[str, Any] = {"n": len(ms)}
    for q in (50, 95, 99):
        v = pct(ms, q)
        out[f"p{q}_ms"] = round(v, 1) if v is not None else None
    out["max_ms"] = round(max(ms), 1) if ms else None
    return out


class Database:
    """CREATE DATABASE on the shared server (trust auth); `drop()` removes it."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{secrets.token_hex(3)}"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{PG_HOST}/{self.name}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{PG_HOST}/{self.name}"

    def create(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def snapshot(rev: str | None) -> tuple[Path | None, str]:
    """The code the API and worker run: the working tree (None), or `git archive <rev>` in a
    temporary folder, so a figure can be pinned to a commit while the tree is being edited."""
    if rev is None:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        return None, f"working tree at {head}{' (with uncommitted changes)' if dirty else ''}"
    commit = _git("rev-parse", rev)
    root = Path(tempfile.mkdtemp(prefix="frontdesk-big-code-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return root, f"commit {commit[:12]} ({rev})"


def remove_snapshot(root: Path | None) -> None:
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()
