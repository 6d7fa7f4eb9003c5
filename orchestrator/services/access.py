"""Who is asking, and what the policy engine lets them do: the one question every service asks.

The HTTP edges build a `Principal` from a bearer token or a session; services take it as a plain
value and ask `can(...)`, so no service knows how the caller signed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.services.state import AppState


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    name: str
    tenant_id: str
    roles: tuple[str, ...]


def can(state: AppState, user: Principal, obj: str, act: str) -> bool:
    return state.policy.allowed(list(user.roles), user.tenant_id, obj, act)
