"""`frontdesk catalog list|show|validate|diff` (local: no API), and `Catalog.versions` / `Catalog.diff`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.registry import Catalog, CatalogError, WorkflowDefinition
from orchestrator.cli import catalog_cmd
from orchestrator.contracts import StepSpec
from orchestrator.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "catalog_fixtures"
TYPED = ["--package", "catalog_fixtures.typed_pkg", "--package", "catalog_fixtures.typed_pkg_v2"]
V3 = str(FIXTURES / "yaml" / "good" / "fx_flow_v3.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="frontdesk")
    catalog_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["catalog", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- versions and diff --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(["catalog_fixtures.typed_pkg", "catalog_fixtures.typed_pkg_v2", V3])


def test_versions(catalog: Catalog) -> None:
    assert catalog.versions("fx_flow") == ["1", "2", "3"]
    assert catalog.versions("fx_helper@2") == ["1", "2"] and catalog.versions("fx_save_note") == ["2"]
    assert catalog.versions("fx_flow", "agent") == [] and catalog.versions("nothing") == []
    numbered = Catalog()
    for version in ("10", "9", "1.2", "1.10"):
        numbered.add_workflow(WorkflowDefinition(name="w", version=version, description="d", steps=[]))
    assert numbered.versions("w") == ["1.2", "1.10", "9", "10"] and numbered.workflow("w").version == "10"


def test_diff_of_two_workflow_versions_includes_their_agents_and_tools(catalog: Catalog) -> None:
    lines = catalog.diff("fx_flow@1", "fx_flow@2")
    for expected in [
        "description: 'Answer a question, keep a note, have it reviewed, then plan follow-ups.' -> "
        "'Answer a question, then plan follow-ups.'",
        "default budget (USD): '0.25' -> '0.30'",
        "example: + 'Answer this one briefly.'",
        "example: - 'Answer me this and keep a note.'",
        "step save: removed",
        "step review: removed",
        "step answer: agent 'fx_helper@1' -> 'fx_helper@2'",
        "step plan: planner_agents ['fx_helper@1'] -> ['fx_helper@2']",
        "agent fx_judge: no longer used (fx_judge@1)",
        "agent fx_helper: version: '1' -> '2'",
        "agent fx_helper: instructions changed",
        "    -Answer the question; use fx_echo to repeat, fx_save_note to keep a note.",
        "    +Answer the question briefly.",
        "agent fx_helper: tier ladder tier-slm > tier-frontier -> tier-open > tier-frontier",
        "agent fx_helper: tool: - 'fx_save_note@2'",
        "agent fx_helper: step_budget_usd: '0.05' -> None",
        "tool fx_save_note: no longer used (fx_save_note@2)",
    ]:
        assert expected in lines, lines
    assert any(line.startswith("agent fx_helper: validator: {'kind': 'judge'") for line in lines)
    back = catalog.diff("fx_flow@2", "fx_flow@3")
    assert (
        "step save: added (tool fx_save_note@2)" in back
        and "agent fx_planner: no longer used (fx_planner@1)" in back
    )
    assert "data_classification: 'internal' -> 'public'" in back and "step plan: removed" in back


def test_diff_of_output_and_argument_schemas() -> None:
    one = load_catalog(["orchestrator.demo.catalog"])
    assert one.diff("refund_request@1", "refund_request@1") == []
    a, b = one.agent("refund_agent@1").spec, one.agent("summary_agent@1").spec
    other = Catalog()
    other.agents["x@1"] = type(one.agent("refund_agent@1"))(a, one.agent("refund_agent@1").output_model)
    other.agents["x@2"] = type(one.agent("refund_agent@1"))(
        b.model_copy(update={"name": "x", "version": "2"}), one.agent("summary_agent@1").output_model
    )
    lines = other.diff("x@1", "x@2")
    schema = [line for line in lines if "output schema" in line]
    assert schema == [
        "agent refund_agent: output schema: + field 'title', + field 'summary', + field 'key_points', "
        "- field 'order_id', - field 'action', - field 'amount', - field 'currency', - field "
        "'customer_message', required ['action', 'amount', 'currency', 'customer_message', 'order_id'] -> "
        "['key_points', 'summary', 'title']"
    ]


def test_diff_refuses_unknown_and_mixed_refs(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match="unknown workflow, agent or tool 'fx_flow@9'"):
        catalog.diff("fx_flow@1", "fx_flow@9")
    with pytest.raises(CatalogError, match="cannot compare workflow fx_flow@1 with agent fx_helper@1"):
        catalog.diff("fx_flow@1", "fx_helper@1")
    assert catalog.diff("fx_helper@1", "fx_helper@1") == []


# --- list ---------------------------------------------------------------------------------------------


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", *TYPED)
    assert code == 0
    assert out.startswith("workflows (1)\n  fx_flow ")
    assert (
        "v1, 2" in out and "testing, risk medium, internal: Answer a question, then plan follow-ups." in out
    )
    assert "agents (3)" in out and "tier-open > tier-frontier; tools fx_echo@1" in out
    assert "tools (2)" in out and "fx_save_note             v2        write: Save a note for later." in out


def test_list_json_reads_the_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(catalog_packages=["catalog_fixtures.typed_pkg", V3])
    monkeypatch.setattr(catalog_cmd, "get_settings", lambda: settings)  # get_settings is cached
    code, out, _ = run(capsys, "list", "--json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"workflows", "agents", "tools"}
    [flow] = data["workflows"]
    assert flow["versions"] == ["1", "3"] and flow["latest"] == "fx_flow@3" and flow["source"] == V3
    helper = next(a for a in data["agents"] if a["name"] == "fx_helper")
    assert (
        helper["ladder"] == ["tier-slm", "tier-frontier"] and helper["source"] == "catalog_fixtures.typed_pkg"
    )


# --- show ---------------------------------------------------------------------------------------------


def test_show_a_workflow_pinned(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "fx_flow@1", *TYPED)
    assert code == 0
    assert out.startswith("workflow fx_flow@1  (versions 1, 2; from catalog_fixtures.typed_pkg)\n")
    assert "budget $0.25, at most 12 turns, 2 intake example(s)" in out
    assert "  3. review               checkpoint output_review by approver" in out
    assert "agents\n  fx_helper@1: ladder tier-slm > tier-frontier, validator judge, max 8 turns\n" in out
    assert "planner fx_planner@1 with fx_helper@1, plan reviewed  (when steps.answer.answer)" in out
    assert "fx_judge@1: ladder tier-frontier" in out  # the judge is pinned with the workflow
    assert "fx_save_note@2: write, $0.001 a run; rules NO RULE (denied)" in out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "fx_flow", "--json", *TYPED)
    data = json.loads(out)
    assert code == 0 and data["kind"] == "workflow" and data["ref"] == "fx_flow@2"
    assert set(data["pinned"]["agents"]) == {"fx_helper@2", "fx_planner@1"}
    assert data["policies"] == {"fx_echo": []}
    code, out, _ = run(capsys, "show", "issue_refund@1", "--json", "--package", "orchestrator.demo.catalog")
    tool = json.loads(out)
    assert (
        tool["kind"] == "tool"
        and tool["side_effect"] == "irreversible"
        and "refund-small" in tool["policies"]
    )
    assert tool["used_by"] == ["refund_agent@1"]


def test_show_an_agent_and_a_tool(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "fx_helper@1", *TYPED)
    assert code == 0 and out.startswith("agent fx_helper@1  (versions 1, 2; from catalog_fixtures.typed_pkg)")
    assert "ladder tier-slm > tier-frontier, validator judge, max 8 turns" in out
    assert "  instructions:\n    Answer the question;" in out and "used by: fx_flow@1" in out
    code, out, _ = run(capsys, "show", "lookup_order", "--package", "orchestrator.demo.catalog")
    assert code == 0 and "lookup_order@1: read; rules order-lookup" in out
    assert 'arguments: {"order_id": {' in out


def test_show_unknown_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "ghost@1", *TYPED)
    assert code == 1 and out == ""
    assert (
        "error: no workflow, agent or tool is registered as 'ghost@1' (see `frontdesk catalog list`)" in err
    )


# --- validate -----------------------------------------------------------------------------------------


def test_validate_the_sample_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--package", "orchestrator.demo.catalog")
    assert code == 0 and "ok: " in out.splitlines()[-1] and "error:" not in out


def test_validate_warnings_pass_unless_strict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", *TYPED)
    assert code == 0
    assert "warning: fx_echo@1: no policy rule mentions tool 'fx_echo'" in out
    assert out.splitlines()[-1].startswith("ok: 2 workflows, 4 agents, 2 tools (")
    code, out, _ = run(capsys, "validate", "--strict", *TYPED)
    assert code == 1 and "error: fx_echo@1: no policy rule mentions tool 'fx_echo'" in out
    assert out.splitlines()[-1].endswith(" error(s), 0 warning(s) in 2 workflows, 4 agents, 2 tools")


def test_validate_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--package", "catalog_fixtures.broken_pkg")
    assert code == 1
    assert "error: no_tier@1: has an empty tier ladder: give a tier or tiers=[...]\n" in out
    assert "error: bad_steps@1: steps[6].name: duplicate step name 'a' (also steps[0])\n" in out
    assert "warning: bk_read@1: no policy rule mentions tool 'bk_read'" in out
    assert out.splitlines()[-1] == "22 error(s), 3 warning(s) in 3 workflows, 9 agents, 1 tool"


def test_validate_a_catalog_that_does_not_load(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", "--package", "catalog_fixtures.bad_model_pkg")
    assert code == 1 and "error: catalog: agent opaque_agent@1: output model" in err
    bad = FIXTURES / "yaml" / "bad" / "unknown_refs.yaml"
    code, _, err = run(capsys, "validate", "--package", "catalog_fixtures.typed_pkg", "--package", str(bad))
    assert code == 1
    assert f"error: catalog: {bad}: workflow broken_refs@1: steps[0] (think).agent: unknown agent" in err
    assert "does not load" in err.splitlines()[-1]
    code, _, err = run(capsys, "validate", "--package", "no_such_catalog_package")
    assert code == 1 and "No module named 'no_such_catalog_package'" in err


def test_validate_without_policies_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", "--policies", str(tmp_path), *TYPED)
    assert code == 0 and "warning: policies: cannot load (policy files missing:" in out


# --- diff ---------------------------------------------------------------------------------------------


def test_diff_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", "fx_flow@1", "fx_flow@2", *TYPED)
    assert code == 0 and "step review: removed\n" in out and "agent fx_helper: version: '1' -> '2'\n" in out
    code, out, _ = run(capsys, "diff", "fx_flow@1", "fx_flow@1", *TYPED)
    assert code == 0 and out == "no differences between fx_flow@1 and fx_flow@1\n"
    code, _, err = run(capsys, "diff", "fx_flow@1", "fx_flow@7", *TYPED)
    assert code == 1 and "error: unknown workflow, agent or tool 'fx_flow@7'" in err


def test_pin_of_a_checkpoint_step_needs_no_agent() -> None:
    catalog = load_catalog(["catalog_fixtures.typed_pkg"])
    steps = [StepSpec(name="go", agent="fx_judge@1"), StepSpec(name="ok", kind="checkpoint")]
    catalog.add_workflow(WorkflowDefinition(name="w", version="1", description="d", steps=steps))
    assert set(catalog.pin("w@1").agents) == {"fx_judge@1"}
