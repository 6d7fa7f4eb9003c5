"""The policy engine: deny by default, first matching rule, versions, hot reload."""

from __future__ import annotations

import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from orchestrator.policy import PolicyEngine
from orchestrator.settings import PROJECT_ROOT


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", target)
    return target


@pytest.mark.parametrize(
    "amount, effect",
    [("0.01", "allow"), ("99.99", "allow"), ("100", "approve"), ("1000", "approve"), ("1000.01", "deny")],
)
def test_refund_thresholds(policies: Path, amount: str, effect: str) -> None:
    engine = PolicyEngine(policies)
    d = engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="issue_refund", args={"amount": Decimal(amount)}
    )
    assert d.effect == effect
    assert d.rule.endswith(effect) and d.policy_version == engine.version


def test_deny_by_default(policies: Path) -> None:
    engine = PolicyEngine(policies)
    d = engine.decide_tool(
        tenant_id="acme", agent="summary_agent", tool="issue_refund", args={"amount": Decimal(1)}
    )
    assert d.effect == "deny" and d.rule == "" and "deny by default" in d.reason
    d = engine.decide_tool(tenant_id="acme", agent="refund_agent", tool="issue_refund", args={})
    assert d.effect == "deny" and "could not be evaluated" in d.reason


def test_people_rbac_per_tenant(policies: Path) -> None:
    engine = PolicyEngine(policies)
    assert engine.allowed(["requester"], "acme", "task", "submit")
    assert not engine.allowed(["requester"], "acme", "checkpoint", "decide")
    assert engine.allowed(["approver"], "globex", "checkpoint", "decide")
    assert not engine.allowed([], "acme", "task", "read_own")
    assert not engine.allowed(["superuser"], "acme", "task", "submit")


def test_policy_change_reloads_with_a_new_version(policies: Path) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    csv = policies / "tool_policy.csv"
    csv.write_text(csv.read_text().replace("r.args.amount < 100, allow", "r.args.amount < 100, approve"))
    time.sleep(0.01)
    d = engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="issue_refund", args={"amount": Decimal(5)}
    )
    assert d.effect == "approve" and engine.version != before


def test_broken_policy_file_keeps_last_good_version(policies: Path) -> None:
    engine = PolicyEngine(policies, reload_interval=0)
    before = engine.version
    (policies / "tool_model.conf").write_text("[request_definition]\nthis is not casbin\n")
    d = engine.decide_tool(
        tenant_id="acme", agent="refund_agent", tool="lookup_order", args={"order_id": "ORD-1"}
    )
    assert d.effect == "allow" and d.policy_version == before
