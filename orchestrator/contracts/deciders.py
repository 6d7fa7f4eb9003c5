"""Who may decide a checkpoint: the one rule that the task workflow's update validator, the
checkpoint service (REST API) and the web inbox all apply.

Pure (no I/O, no clock), so the workflow can run it inside its sandbox. Callers pass what they know
of the checkpoint; the answer is None (may decide) or a `Refusal` whose `kind` each caller maps to
its own error (an ApplicationError type in the workflow, 403 or 409 in the services) and whose
`message` a person can act on.

What the policy engine says about the caller's roles (`checkpoint:decide` for the tenant) is asked
by the services before this rule; the workflow cannot ask it (casbin is I/O) and relies on the
assignee roles recorded with the checkpoint instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

RefusalKind = Literal["not_open", "own_task", "not_assigned", "already_approved"]


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    message: str

    @property
    def is_conflict(self) -> bool:
        """True when the checkpoint's state refuses (409), False when the person does (403)."""
        return self.kind in ("not_open", "already_approved")


def why_not_decide(
    *,
    status: str,
    requester_id: str,
    assignee_roles: Iterable[str],
    named_approvers: Iterable[str],
    approved_by: Iterable[str],
    decider_id: str,
    decider_roles: Iterable[str],
) -> Refusal | None:
    """Why `decider_id` (holding `decider_roles` in the task's tenant) may not decide now, or None.

    `assignee_roles`: the checkpoint's assignee role plus roles added by escalation or reassignment;
    `named_approvers`: user ids named on the checkpoint, who may decide whatever their roles;
    `approved_by`: who already approved in the current round (each approver counts once).
    """
    if status != "open":
        return Refusal("not_open", f"This checkpoint is already {status.replace('_', ' ')}.")
    if decider_id == requester_id:
        return Refusal(
            "own_task", "You requested this task, so someone else must decide its checkpoint (four-eyes)."
        )
    roles = {r for r in assignee_roles if r}
    if not (roles & set(decider_roles) or decider_id in set(named_approvers)):
        return Refusal(
            "not_assigned", f"Deciding this checkpoint needs one of the roles: {', '.join(sorted(roles))}."
        )
    if decider_id in set(approved_by):
        return Refusal("already_approved", "You already approved this checkpoint; another approver must.")
    return None
