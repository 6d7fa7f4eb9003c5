"""The five policy files: their names, reading them as text, and the version (hash) of a set.

Below both the engine (`orchestrator.policy.engine`, which enforces what it reads here) and the
linter (`orchestrator.policy.lint`, which checks the same files); it needs only the rules' error
type (`orchestrator.policy.rules`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from orchestrator.policy.rules import PolicyError

__all__ = ["FILES", "load_texts", "policy_version"]

FILES = ("people_model.conf", "people_policy.csv", "tool_model.conf", "tool_policy.csv", "approvals.yaml")


def policy_version(raw: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        data = raw[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def load_texts(policies_dir: Path) -> tuple[dict[str, str], str]:
    """The five files as text, and the version (hash) of exactly these bytes."""
    paths = {name: policies_dir / name for name in FILES}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"policy files missing: {', '.join(missing)}")
    raw = {name: p.read_bytes() for name, p in paths.items()}
    texts: dict[str, str] = {}
    for name, data in raw.items():
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError([f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    return texts, policy_version(raw)
