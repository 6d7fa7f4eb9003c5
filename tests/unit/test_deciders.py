"""Who may decide a checkpoint: the pure rule (`orchestrator.contracts.deciders`) as a truth table,
and the checkpoint service feeding it from the database (current round, extra roles, named
approvers) with the policy engine, on a fresh migrated SQLite file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.contracts.deciders import Refusal, why_not_decide
from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.errors import Conflict, Forbidden, NotFound
from orchestrator.models import Checkpoint, CheckpointDecision, Task, Tenant, User
from orchestrator.services import checkpoints as service
from orchestrator.services.access import Principal

REQUESTER, AVERY, BLAKE, DANA = "usr_riley", "usr_avery", "usr_blake", "usr_dana"

OPEN: dict[str, Any] = {
    "status": "open",
    "requester_id": REQUESTER,
    "assignee_roles": ["approver"],
    "named_approvers": [],
    "approved_by": [],
    "decider_id": AVERY,
    "decider_roles": ["approver"],
}


def kind(**changes: Any) -> str | None:
    refusal = why_not_decide(**{**OPEN, **changes})
    return None if refusal is None else refusal.kind


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, None, id="assigned-approver-may-decide"),
        pytest.param({"status": "approved"}, "not_open", id="decided"),
        pytest.param({"status": "cancelled", "decider_id": REQUESTER}, "not_open", id="closed-before-four-eyes"),
        pytest.param({"decider_id": REQUESTER}, "own_task", id="requester-with-the-role"),
        pytest.param(
            {"decider_id": REQUESTER, "named_approvers": [REQUESTER]}, "own_task", id="requester-even-if-named"
        ),
        pytest.param({"decider_roles": ["requester"]}, "not_assigned", id="role-not-assigned"),
        pytest.param({"decider_roles": []}, "not_assigned", id="no-roles"),
        pytest.param(
            {"assignee_roles": ["admin"], "decider_roles": ["approver"]}, "not_assigned", id="reassigned-away"
        ),
        pytest.param(
            {"assignee_roles": ["approver", ""], "decider_roles": [""]}, "not_assigned", id="empty-role-matches-none"
        ),
        pytest.param({"decider_roles": ["developer"], "named_approvers": [AVERY]}, None, id="named-without-role"),
        pytest.param(
            {"decider_roles": ["developer"], "named_approvers": [BLAKE]}, "not_assigned", id="someone-else-named"
        ),
        pytest.param(
            {"assignee_roles": ["approver", "admin"], "decider_roles": ["admin"]}, None, id="escalated-extra-role"
        ),
        pytest.param({"approved_by": [AVERY]}, "already_approved", id="approved-this-round"),
        pytest.param({"approved_by": [BLAKE]}, None, id="another-approved-this-round"),
        pytest.param(
            {"approved_by": [AVERY], "decider_roles": ["developer"]}, "not_assigned", id="assignment-before-approvals"
        ),
    ],
)
def test_truth_table(changes: dict[str, Any], expected: str | None) -> None:
    assert kind(**changes) == expected


@pytest.mark.parametrize(
    ("changes", "conflict", "words"),
    [
        ({"status": "changes_requested"}, True, "already changes requested"),
        ({"decider_id": REQUESTER}, False, "someone else must decide"),
        ({"decider_roles": [], "assignee_roles": ["approver", "admin"]}, False, "roles: admin, approver"),
        ({"approved_by": [AVERY]}, True, "another approver"),
    ],
)
def test_refusals_say_why_and_whether_the_state_or_the_person_refuses(
    changes: dict[str, Any], conflict: bool, words: str
) -> None:
    refusal = why_not_decide(**{**OPEN, **changes})
    assert refusal is not None
    assert refusal.is_conflict is conflict
    assert words in refusal.message


def test_iterables_are_read_once_each() -> None:
    """Callers pass generators (split strings, query rows): each is consumed as given."""
    refusal = why_not_decide(
        **{
            **OPEN,
            "assignee_roles": (r for r in ["approver"]),
            "named_approvers": iter([]),
            "approved_by": (u for u in [AVERY]),
            "decider_roles": (r for r in ["approver"]),
        }
    )
    assert refusal is not None and refusal.kind == "already_approved"


# -- the service: policy first, then the rule fed from the checkpoint's row --------------------------


class Policy:
    """Approvers and admins may decide checkpoints; anyone may read, only approvers/admins read all."""

    def allowed(self, roles: list[str], tenant_id: str, obj: str, act: str) -> bool:
        if obj == "checkpoint" and act in ("decide", "read"):
            return bool({"approver", "admin"} & set(roles))
        return False


STATE: Any = SimpleNamespace(policy=Policy())


def who(user_id: str, *roles: str, tenant: str = "acme") -> Principal:
    return Principal(user_id=user_id, email=f"{user_id}@x.example", name=user_id, tenant_id=tenant, roles=roles)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deciders") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(template_db: Path, tmp_path: Path) -> Iterator[Engine]:
    shutil.copy(template_db, tmp_path / "d.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    with session_scope(engine) as session:
        session.add(Tenant(id="acme", name="Acme"))
        session.add(Tenant(id="globex", name="Globex"))
        for user_id in (REQUESTER, AVERY, BLAKE, DANA):
            session.add(User(id=user_id, email=f"{user_id}@x.example", name=user_id))
        session.flush()
        session.add(
            Task(
                id="tsk_1",
                tenant_id="acme",
                requester_id=REQUESTER,
                workflow_name="refund_request",
                workflow_version="1",
                input_text="refund",
                definition_json="{}",
                status="waiting",
            )
        )
        session.flush()
        session.add(checkpoint("cp_1"))
    yield engine
    engine.dispose()


def checkpoint(cp_id: str, **fields: Any) -> Checkpoint:
    values: dict[str, Any] = {
        "id": cp_id,
        "tenant_id": "acme",
        "task_id": "tsk_1",
        "requester_id": REQUESTER,
        "step": "s1",
        "tool": "issue_refund",
        "args_json": "{}",
        "args_digest": "d",
        "policy_version": "p",
        "rule": "r",
        **fields,
    }
    return Checkpoint(**values)


def decided(engine: Engine, cp_id: str, *rows: tuple[str, str, int]) -> None:
    with session_scope(engine) as session:
        for decider, decision, rnd in rows:
            session.add(
                CheckpointDecision(
                    tenant_id="acme", checkpoint_id=cp_id, decider_id=decider, decision=decision, round=rnd
                )
            )


def refusal(engine: Engine, user: Principal, cp_id: str = "cp_1", **fields: Any) -> Refusal | None:
    with Session(engine) as session:
        cp = session.get(Checkpoint, cp_id)
        assert cp is not None
        for name, value in fields.items():
            setattr(cp, name, value)
        return service.refusal_for(session, STATE, user, cp)


def test_current_round_approvers(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(checkpoint("cp_2"))
    decided(engine, "cp_1", (AVERY, "approve", 0), (BLAKE, "approve_with_edits", 1), (DANA, "approve", 1))
    decided(engine, "cp_2", (AVERY, "reject", 0))
    with Session(engine) as session:
        found = service.current_approvers(session, ["cp_1", "cp_2", "cp_none"])
        counts = service.approvals_so_far(session, ["cp_1", "cp_2"])
    assert found == {"cp_1": {BLAKE, DANA}, "cp_2": set(), "cp_none": set()}
    assert counts == {"cp_1": 2, "cp_2": 0}


def test_the_policy_engine_refuses_after_state_and_four_eyes(engine: Engine) -> None:
    # Named, but the tenant's policy lets none of her roles decide checkpoints.
    got = refusal(engine, who(DANA, "developer"), named_approvers=DANA)
    assert got == Refusal("not_assigned", service.NEEDS_APPROVER)
    # Assigned by role on the checkpoint, but the policy does not let that role decide.
    got = refusal(engine, who(DANA, "auditor"), assignee_role="auditor")
    assert got == Refusal("not_assigned", service.NEEDS_APPROVER)
    # The requester without the approver role is told about four-eyes (403 either way) ...
    got = refusal(engine, who(REQUESTER, "requester"))
    assert got is not None and got.kind == "own_task"
    # ... and anyone about a checkpoint that is no longer open (409).
    got = refusal(engine, who(DANA, "developer"), status="approved")
    assert got is not None and got.kind == "not_open"


def test_service_feeds_the_rule_from_the_row(engine: Engine) -> None:
    avery, admin = who(AVERY, "approver"), who(DANA, "admin")
    assert refusal(engine, avery) is None
    got = refusal(engine, who(REQUESTER, "requester", "approver"))
    assert got is not None and got.kind == "own_task"
    got = refusal(engine, avery, status="approved")
    assert got is not None and got.kind == "not_open"
    got = refusal(engine, admin)
    assert got is not None and got.kind == "not_assigned"
    assert refusal(engine, admin, extra_roles="auditor,admin") is None  # escalated to admins
    assert refusal(engine, admin, assignee_role="owner", named_approvers=f"{BLAKE},{DANA}") is None
    got = refusal(engine, avery, assignee_role="admin")
    assert got is not None and got.kind == "not_assigned"  # reassigned away from approvers


def test_only_approvals_of_the_current_round_count(engine: Engine) -> None:
    avery = who(AVERY, "approver")
    decided(engine, "cp_1", (AVERY, "approve", 0))
    got = refusal(engine, avery)
    assert got is not None and got.kind == "already_approved"
    decided(engine, "cp_1", (BLAKE, "approve_with_edits", 1))  # a new round: avery's approval is spent
    assert refusal(engine, avery) is None
    got = refusal(engine, who(BLAKE, "approver"))
    assert got is not None and got.kind == "already_approved"


def test_refusals_map_to_409_or_403() -> None:
    assert isinstance(service.refused(Refusal("not_open", "m")), Conflict)
    assert isinstance(service.refused(Refusal("already_approved", "m")), Conflict)
    assert isinstance(service.refused(Refusal("own_task", "m")), Forbidden)
    assert isinstance(service.refused(Refusal("not_assigned", "m")), Forbidden)
    assert service.refused(Refusal("own_task", "the message")).detail == "the message"


def test_who_may_see_a_checkpoint(engine: Engine) -> None:
    with Session(engine) as session:
        assert service.visible_checkpoint(session, STATE, who(REQUESTER, "requester"), "cp_1").id == "cp_1"
        assert service.visible_checkpoint(session, STATE, who(AVERY, "approver"), "cp_1").id == "cp_1"
        with pytest.raises(Forbidden):
            service.visible_checkpoint(session, STATE, who(DANA, "requester"), "cp_1")
        with pytest.raises(NotFound):
            service.visible_checkpoint(session, STATE, who(AVERY, "approver", tenant="globex"), "cp_1")
