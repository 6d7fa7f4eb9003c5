"""The demo tenant can meet every approval rule it ships with: as many approvers as the most
demanding rule asks for, besides the requester; seeding twice adds nobody twice."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlmodel import select

from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.seed import DEMO_TENANT, seed_demo
from orchestrator.models import Membership
from orchestrator.resources import DEFAULT_POLICIES_DIR


def test_the_demo_tenant_has_enough_approvers_for_every_shipped_rule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    migrate(url)
    engine = make_engine(url)
    seed_demo(engine, tmp_path)
    seed_demo(engine, tmp_path)  # as every `frontdesk dev` start does
    with session_scope(engine) as session:
        rows = session.exec(select(Membership).where(Membership.tenant_id == DEMO_TENANT)).all()
    engine.dispose()
    assert len(rows) == len({(m.user_id, m.role) for m in rows})  # nobody added twice
    approvers = {m.user_id for m in rows if m.role == "approver"}

    rules = yaml.safe_load((DEFAULT_POLICIES_DIR / "approvals.yaml").read_text())
    needed = max(int(rule.get("approvers_required", 1)) for rule in rules.values())
    assert needed == 2  # refund-large-two-approvers (500 to 1000)
    assert len(approvers) >= needed
