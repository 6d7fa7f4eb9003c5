"""Workflow definitions in YAML (`orchestrator.catalog.yaml_defs`) and YAML entries of `catalog_packages`."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.catalog.loader import is_yaml_entry, load_catalog
from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.catalog.validate import validate_catalog
from orchestrator.catalog.yaml_defs import YamlDefinitionError, load_yaml_workflows

FIXTURES = Path(__file__).resolve().parent.parent / "catalog_fixtures"
GOOD = FIXTURES / "yaml" / "good"
BAD = FIXTURES / "yaml" / "bad"


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(["catalog_fixtures.typed_pkg"])


def test_a_folder_of_yaml_loads_after_the_packages() -> None:
    # listed first, read last: the YAML refers to agents the packages register
    catalog = load_catalog([str(GOOD), "orchestrator.demo.catalog", "catalog_fixtures.typed_pkg"])
    assert {"fx_flow@3", "quick_refund@1", "quick_summary@1"} <= set(catalog.workflow_refs())
    assert catalog.versions("fx_flow") == ["1", "3"]

    v3 = catalog.workflow("fx_flow@3")
    assert (v3.category, v3.risk_class, v3.data_classification) == ("testing", "low", "public")
    assert (v3.default_budget_usd, v3.max_task_turns) == ("0.2", 8)
    assert [(s.name, s.kind, s.agent or s.tool) for s in v3.steps] == [
        ("answer", "agent", "fx_helper@1"),
        ("save", "tool", "fx_save_note@2"),
    ]
    assert v3.steps[1].when == "steps.answer.answer" and v3.steps[1].args == {"note": "{steps.answer.answer}"}
    assert catalog.sources["fx_flow@3"] == str(GOOD / "fx_flow_v3.yaml")

    refund = catalog.workflow("quick_refund@1")  # `version: 1` (a number) is read as "1"
    assert refund.steps[1].kind == "checkpoint" and refund.examples[0].startswith("Refund ORD-1001")
    assert catalog.sources["quick_summary@1"] == str(GOOD / "refunds.yml")  # second YAML document
    pinned = catalog.pin("quick_refund@1")
    assert set(pinned.agents) == {"refund_agent@1"} and "issue_refund" in pinned.tools
    assert not [i for i in validate_catalog(catalog) if i.severity == "error"]


def test_a_single_file_entry(catalog: Catalog) -> None:
    added = load_yaml_workflows(catalog, GOOD / "fx_flow_v3.yaml")
    assert [d.ref for d in added] == ["fx_flow@3"] and catalog.workflow("fx_flow").version == "3"
    loaded = load_catalog(["catalog_fixtures.typed_pkg", str(GOOD / "fx_flow_v3.yaml")])
    assert loaded.workflow_refs() == ["fx_flow@1", "fx_flow@3"]


def test_which_entries_are_yaml(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    assert is_yaml_entry("defs/extra.yaml") and is_yaml_entry("EXTRA.YML") and is_yaml_entry(str(GOOD))
    assert not is_yaml_entry("orchestrator.demo.catalog") and not is_yaml_entry(str(package))


def test_a_list_of_definitions_in_one_document(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        "- {name: one, version: '1', description: d, steps: [{name: a, agent: fx_helper@1}]}\n"
        "- {name: two, version: '1', description: d, steps: [{name: a, agent: fx_judge@1}]}\n"
    )
    assert [d.ref for d in load_yaml_workflows(catalog, path)] == ["one@1", "two@1"]


def _problems(catalog: Catalog, path: Path) -> list[str]:
    before = set(catalog.workflows)
    with pytest.raises(YamlDefinitionError) as caught:
        load_yaml_workflows(catalog, path)
    assert set(catalog.workflows) == before  # nothing from a bad file is registered
    assert isinstance(caught.value, CatalogError)
    return caught.value.problems


STEP = "steps: [{name: think, agent: fx_helper@1}]"
HEAD = "name: w\nversion: '1'\ndescription: d\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "not valid YAML: while parsing a flow sequence"),
        ("just a string\n", "expected a workflow definition (a mapping), got str"),
        ("# nothing here\n", "holds no workflow definition"),
        (f"version: '1'\ndescription: d\n{STEP}\n", "workflow ?@1: name: Field required"),
        (f"name: w\nversion: '1'\n{STEP}\n", "workflow w@1: description: Field required"),
        (f"{HEAD}steps: []\n", "workflow w@1: steps: List should have at least 1 item"),
        (f"{HEAD}colour: blue\n{STEP}\n", "workflow w@1: colour: Extra inputs are not permitted"),
        (
            f"{HEAD}risk_class: extreme\n{STEP}\n",
            "workflow w@1: risk_class: Input should be 'low', 'medium' or 'high'",
        ),
        (
            f"{HEAD}data_classification: secret\n{STEP}\n",
            "workflow w@1: data_classification: Input should be",
        ),
        (
            f"{HEAD}default_budget_usd: lots\n{STEP}\n",
            "default_budget_usd: must be a non-negative amount in USD",
        ),
        (
            f"{HEAD}max_task_turns: 0\n{STEP}\n",
            "workflow w@1: max_task_turns: Input should be greater than or equal to 1",
        ),
        (
            f"name: w\nversion: 1.10\ndescription: d\n{STEP}\n",
            "version: quote the version: YAML reads it as the number 1.1",
        ),
        (
            f"name: w@2\nversion: '1'\ndescription: d\n{STEP}\n",
            "workflow w@2@1: name: String should match pattern",
        ),
        (
            f"{HEAD}steps: [{{name: think, agnet: fx_helper@1}}]\n",
            "steps[0] (think).agnet: Extra inputs are not permitted",
        ),
        (
            f"{HEAD}steps: [{{name: think, kind: loop}}]\n",
            "steps[0] (think).kind: Input should be 'agent', 'tool'",
        ),
        (
            f"{HEAD}steps: [{{name: think, args: nope}}]\n",
            "steps[0] (think).args: Input should be a valid dictionary",
        ),
        (
            f"{HEAD}steps: [{{name: think, agent: ghost@1}}]\n",
            "steps[0] (think).agent: unknown agent 'ghost@1'",
        ),
        (
            f"{HEAD}steps: [{{name: think, agent: fx_helper@7}}]\n",
            "steps[0] (think).agent: unknown agent 'fx_helper@7'; fx_helper has version(s) 1",
        ),
        (
            f"{HEAD}steps: [{{name: s, kind: tool, tool: fx_echo@9}}]\n",
            "steps[0] (s).tool: unknown tool 'fx_echo@9'",
        ),
        (
            f"{HEAD}steps: [{{name: think, agent: fx_helper}}]\n",
            "steps[0] (think): 'fx_helper' must be name@version",
        ),
        (f"{HEAD}steps: [{{name: think}}]\n", "steps[0] (think).agent: an agent step names no agent"),
        (f"{HEAD}steps: [{{name: s, kind: tool}}]\n", "steps[0] (s).tool: a tool step names no tool"),
        (
            f"{HEAD}steps: [{{name: p, kind: planner, agent: fx_planner@1}}]\n",
            "steps[0] (p).planner_agents: a planner step needs the agents it may plan with",
        ),
        (
            f"{HEAD}steps: [{{name: p, kind: planner, agent: fx_planner@1, planner_agents: [nobody@1]}}]\n",
            "steps[0] (p).planner_agents[0]: unknown agent 'nobody@1'",
        ),
        (
            f"{HEAD}steps: [{{name: a, agent: fx_helper@1}}, {{name: a, agent: fx_judge@1}}]\n",
            "steps[1].name: duplicate step name 'a' (also steps[0])",
        ),
        (
            f"{HEAD}steps: [{{name: a, agent: fx_helper@1, when: steps.b.ok}}, {{name: b, agent: fx_judge@1}}]\n",
            "steps[0] (a).when: 'steps.b.ok' names no earlier step",
        ),
        (
            f"{HEAD}steps: [{{name: c, kind: checkpoint}}]\n",
            "steps[0] (c): a checkpoint reviews the previous step's output",
        ),
        (
            f"name: fx_flow\nversion: '1'\ndescription: d\n{STEP}\n",
            "fx_flow@1 is registered twice (first by catalog_fixtures.typed_pkg)",
        ),
    ],
)
def test_each_error_names_the_file_and_the_field(
    catalog: Catalog, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "defs.yaml"
    path.write_text(text)
    problems = _problems(catalog, path)
    assert all(p.startswith(f"{path}: ") for p in problems), problems
    assert any(message in p for p in problems), problems


def test_every_problem_of_a_file_is_reported(catalog: Catalog) -> None:
    problems = _problems(catalog, BAD / "schema.yaml")
    where = f"{BAD / 'schema.yaml'}: workflow broken_schema@1.1: "
    assert [p.removeprefix(where) for p in problems] == [
        'version: quote the version: YAML reads it as the number 1.1 (write e.g. version: "1.10")',
        "description: Field required",
        "steps[0] (think).agnet: Extra inputs are not permitted",
        "steps[1] (check).kind: Input should be 'agent', 'tool', 'checkpoint' or 'planner'",
        "risk_class: Input should be 'low', 'medium' or 'high'",
        "colour: Extra inputs are not permitted",
    ]
    refs = _problems(catalog, BAD / "unknown_refs.yaml")
    where = f"{BAD / 'unknown_refs.yaml'}: workflow broken_refs@1: "
    assert [p.removeprefix(where) for p in refs] == [
        "steps[2] (bare): 'fx_helper' must be name@version",
        "steps[0] (think).agent: unknown agent 'ghost_agent@1'",
        "steps[1] (act).tool: unknown tool 'ghost_tool@9'",
    ]


def test_the_second_of_several_documents_is_named(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(f"{HEAD}{STEP}\n---\nname: x\nversion: '1'\n{STEP}\n")
    assert _problems(catalog, path) == [f"{path} (definition 2): workflow x@1: description: Field required"]


def test_missing_paths_and_empty_folders(catalog: Catalog, tmp_path: Path) -> None:
    assert _problems(catalog, tmp_path / "absent.yaml") == [
        f"{tmp_path / 'absent.yaml'}: no such file or folder"
    ]
    assert _problems(catalog, tmp_path) == [f"{tmp_path}: the folder holds no .yaml or .yml files"]
    with pytest.raises(YamlDefinitionError, match="no such file or folder"):
        load_catalog(["catalog_fixtures.typed_pkg", str(tmp_path / "absent.yml")])
