"""`frontdesk catalog …`: the catalog as this machine loads it (no API call).

    frontdesk catalog list [--json]                 workflows, agents and tools with their versions
    frontdesk catalog show REF [--json]             a workflow pinned with its agents and tools,
                                                    an agent, or a tool (with the rules naming it)
    frontdesk catalog validate [--strict]           every issue; exit 1 on errors
    frontdesk catalog diff REF_A REF_B              what changed between two versions

The catalog is loaded like the worker loads it: the packages and YAML files of the setting
`catalog_packages`, or those given with `--package` (repeatable). Policies come from the setting
`policies_dir` or `--policies`. Exit codes: 0 ok, 1 errors (an unknown ref, a catalog that does
not load, validation errors; with --strict warnings too).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from orchestrator.catalog.loader import load_catalog
from orchestrator.catalog.registry import Catalog, CatalogError
from orchestrator.catalog.validate import CatalogIssue, policy_mentions, validate_catalog
from orchestrator.settings import get_settings


class _Failed(Exception):
    pass


def _catalog(args: argparse.Namespace) -> Catalog:
    packages = args.package or get_settings().catalog_packages
    try:
        return load_catalog(packages)
    except (CatalogError, ImportError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for problem in problems:
            print(f"error: catalog: {problem}", file=sys.stderr)
        print(f"the catalog ({', '.join(packages)}) does not load", file=sys.stderr)
        raise _Failed from None


def _policy(args: argparse.Namespace) -> Any:
    from orchestrator.policy.engine import PolicyEngine

    return PolicyEngine(Path(args.policies) if args.policies else get_settings().policies_dir)


def _rules(args: argparse.Namespace) -> tuple[Any, ...] | None:
    try:
        return tuple(_policy(args).view().rules)
    except Exception as exc:
        print(f"note: policies not loaded ({exc}); rules naming tools are not shown", file=sys.stderr)
        return None


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except _Failed:
            return 1
        except CatalogError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return wrapped


# --- list ----------------------------------------------------------------------------------------------


def _groups(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("workflow", "agent", "tool"):
        names: dict[str, list[str]] = defaultdict(list)
        for ref in catalog.refs(kind):
            names[ref.split("@", 1)[0]].append(ref)
        rows = []
        for name in sorted(names):
            latest = catalog.resolve(kind, name)
            row: dict[str, Any] = {"name": name, "versions": catalog.versions(name, kind), "latest": latest}
            if kind == "workflow":
                wf = catalog.workflow(latest)
                row |= {
                    "description": wf.description,
                    "category": wf.category,
                    "risk_class": wf.risk_class,
                    "data_classification": wf.data_classification,
                    "examples": len(wf.examples),
                }
            elif kind == "agent":
                spec = catalog.agent(latest).spec
                row |= {"ladder": spec.ladder, "tools": spec.tools, "output_model": spec.output_model}
            else:
                tool = catalog.tool(latest).spec
                row |= {
                    "side_effect": tool.side_effect,
                    "description": tool.description,
                    "cost_usd": tool.cost_usd,
                }
            row["source"] = catalog.sources.get(latest, "")
            rows.append(row)
        out[f"{kind}s"] = rows
    return out


def catalog_list(args: argparse.Namespace) -> int:
    groups = _groups(_catalog(args))
    if args.json:
        print(json.dumps(groups, indent=2))
        return 0
    for title, rows in groups.items():
        print(f"{title} ({len(rows)})")
        for row in rows:
            versions = ", ".join(row["versions"])
            if title == "workflows":
                detail = f"{row['category']}, risk {row['risk_class']}, {row['data_classification']}: {row['description']}"
            elif title == "agents":
                detail = " > ".join(row["ladder"]) + (
                    f"; tools {', '.join(row['tools'])}" if row["tools"] else ""
                )
            else:
                detail = f"{row['side_effect']}: {row['description']}"
            print(f"  {row['name']:<24} v{versions:<8} {_short(detail)}")
    return 0


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- show ----------------------------------------------------------------------------------------------


def _describe(catalog: Catalog, ref: str, rules: tuple[Any, ...] | None) -> dict[str, Any]:
    kind = catalog.kind_of(ref)
    if kind is None:
        raise CatalogError(
            f"no workflow, agent or tool is registered as {ref!r} (see `frontdesk catalog list`)"
        )
    full = catalog.resolve(kind, ref)
    base = {
        "kind": kind,
        "ref": full,
        "versions": catalog.versions(full, kind),
        "source": catalog.sources.get(full, ""),
    }
    if kind == "workflow":
        pinned = catalog.pin(full)
        policies = {n: policy_mentions(rules, n) for n in pinned.tools} if rules is not None else None
        return base | {"pinned": pinned.model_dump(mode="json"), "policies": policies}
    if kind == "agent":
        spec = catalog.agent(full).spec
        return base | spec.model_dump(mode="json") | {"ladder": spec.ladder, "used_by": catalog.used_by(full)}
    spec_t = catalog.tool(full).spec
    policies_t = policy_mentions(rules, spec_t.name) if rules is not None else None
    return base | spec_t.model_dump(mode="json") | {"policies": policies_t, "used_by": catalog.used_by(full)}


def catalog_show(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    info = _describe(catalog, args.ref, _rules(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{info['kind']} {info['ref']}  (versions {', '.join(info['versions'])}; from {info['source'] or '?'})"
    )
    if info["kind"] == "workflow":
        _show_workflow(info)
    elif info["kind"] == "agent":
        _show_agent(info, full=True)
        print(f"  used by: {', '.join(info['used_by']) or 'nothing'}")
    else:
        _show_tool(info, info["policies"], full=True)
        print(f"  used by: {', '.join(info['used_by']) or 'nothing'}")
    return 0


def _show_workflow(info: dict[str, Any]) -> None:
    wf = info["pinned"]
    print(f"  {wf['description']}")
    budget = f"${wf['default_budget_usd']}" if wf["default_budget_usd"] else "tenant default"
    print(
        f"  category {wf['category']}, risk {wf['risk_class']}, data {wf['data_classification']}, "
        f"budget {budget}, at most {wf['max_task_turns']} turns, {len(wf['examples'])} intake example(s)"
    )
    print("steps")
    for i, step in enumerate(wf["steps"], 1):
        if step["kind"] == "tool":
            what = f"tool {step['tool']} args {json.dumps(step['args'])}"
        elif step["kind"] == "checkpoint":
            what = f"checkpoint {step['review']} by {step['assignee_role']}"
        elif step["kind"] == "planner":
            review = ", plan reviewed" if step["require_plan_review"] else ""
            what = f"planner {step['agent']} with {', '.join(step['planner_agents'])}{review}"
        else:
            what = f"agent {step['agent']}"
        when = f"  (when {step['when']})" if step["when"] else ""
        print(f"  {i}. {step['name']:<20} {what}{when}")
    print("agents")
    for agent in wf["agents"].values():
        _show_agent(agent)
    print("tools" + ("" if wf["tools"] else "  (none)"))
    for name, tool in wf["tools"].items():
        _show_tool(tool, None if info["policies"] is None else info["policies"].get(name, []))


def _show_agent(a: dict[str, Any], *, full: bool = False) -> None:
    ladder = " > ".join(a.get("tiers") or [a["tier"]])
    validator = a.get("validator")
    check = f", validator {validator['kind']}" if validator else ""
    print(f"  {a['name']}@{a['version']}: ladder {ladder}{check}, max {a['max_turns']} turns")
    print(f"    tools {', '.join(a['tools']) or 'none'}; output {a['output_model']}")
    if full:
        print("  instructions:")
        for line in a["instructions"].splitlines():
            print(f"    {line}")


def _show_tool(t: dict[str, Any], policies: list[str] | None, *, full: bool = False) -> None:
    cost = f", ${t['cost_usd']} a run" if t.get("cost_usd") else ""
    rules = "policies not loaded" if policies is None else (", ".join(policies) or "NO RULE (denied)")
    print(f"  {t['name']}@{t['version']}: {t['side_effect']}{cost}; rules {rules}")
    print(f"    {_short(t['description'])}")
    if full:
        print(f"  arguments: {json.dumps(t['args_schema'].get('properties', {}))}")


# --- validate and diff ---------------------------------------------------------------------------------


def catalog_validate(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    extra: list[CatalogIssue] = []
    try:
        policy = _policy(args)
    except Exception as exc:
        policy = None
        extra.append(CatalogIssue("warning", "policies", f"cannot load ({exc}); tool policy checks skipped"))
    issues = validate_catalog(catalog, policy, strict=args.strict)
    issues += [CatalogIssue("error", i.ref, i.message) if args.strict else i for i in extra]
    for issue in issues:
        print(issue)
    errors = sum(1 for i in issues if i.severity == "error")
    sizes = [(len(catalog.refs(k)), k) for k in ("workflow", "agent", "tool")]
    counts = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for n, kind in sizes)
    if errors:
        print(f"{errors} error(s), {len(issues) - errors} warning(s) in {counts}")
        return 1
    warnings = len(issues)
    print(f"ok: {counts}" + (f" ({warnings} warning(s); --strict fails on them)" if warnings else ""))
    return 0


def catalog_diff(args: argparse.Namespace) -> int:
    lines = _catalog(args).diff(args.ref_a, args.ref_b)
    for line in lines:
        print(line)
    if not lines:
        print(f"no differences between {args.ref_a} and {args.ref_b}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `catalog` command group; each command sets `args.func(args) -> exit code`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--package",
        action="append",
        metavar="PKG",
        help="load this catalog package or YAML file/folder instead of the setting (repeatable)",
    )
    policies = argparse.ArgumentParser(add_help=False)
    policies.add_argument(
        "--policies", metavar="DIR", help="policy folder (default: the settings' policies_dir)"
    )
    group = subparsers.add_parser("catalog", help="list, show, validate and diff the catalog definitions")
    commands = group.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")

    def command(
        name: str, func: Any, text: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=text, description=text, parents=[common, *parents]
        )
        parser.set_defaults(func=_run(func))
        return parser

    listing = command("list", catalog_list, "workflows, agents and tools with their versions")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = command(
        "show", catalog_show, "a workflow pinned with its agents and tools, an agent or a tool", policies
    )
    show.add_argument("ref", metavar="REF", help="name@version (a bare name means the newest version)")
    show.add_argument("--json", action="store_true", help="print JSON")
    validate = command("validate", catalog_validate, "check the catalog; exit 1 on errors", policies)
    validate.add_argument("--strict", action="store_true", help="treat warnings as errors")
    diff = command("diff", catalog_diff, "differences between two versions of a workflow, agent or tool")
    diff.add_argument("ref_a", metavar="REF_A")
    diff.add_argument("ref_b", metavar="REF_B")
