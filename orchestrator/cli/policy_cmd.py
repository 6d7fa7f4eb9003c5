"""`frontdesk policy check` and `frontdesk policy explain`: the policy files on this machine.

Both read the policy folder directly (`--dir`, default: the settings' policies_dir), so an edit
can be validated and tried before it is deployed; a running API reloads it within a second.

    frontdesk policy check                    lint; prints every issue and the version
    frontdesk policy explain --tenant acme --agent refund_agent --tool issue_refund \\
        --args '{"amount": "250"}' [--facts '{"data_classification": "confidential"}'] [--json]

Exit codes: check 0 = no errors (warnings allowed), 1 = errors; explain 0 = allowed,
1 = needs approval or denied; 2 = bad usage (JSON that does not parse, policies that do not load).
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.policy.engine import Explanation, PolicyEngine, PolicyError, ToolFacts
from orchestrator.policy.files import load_texts
from orchestrator.policy.lint import lint
from orchestrator.settings import get_settings


class UsageError(Exception):
    pass


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else get_settings().policies_dir


def policy_check(args: argparse.Namespace) -> int:
    directory = _dir(args)
    issues = lint(directory)
    for issue in issues:
        print(issue)
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    try:
        _, version = load_texts(directory)
        print(f"policy version {version}")
    except (OSError, PolicyError) as exc:
        print(f"policy version unavailable: {exc}")
    if errors:
        print(f"{errors} error(s), {warnings} warning(s) in {directory}: the engine refuses these files")
        return 1
    print(f"ok: {directory} lints clean" + (f" ({warnings} warning(s))" if warnings else ""))
    return 0


def _object(raw: str | None, flag: str) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw, parse_float=Decimal)  # amounts stay exact
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag} is not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object")
    return value


def _facts(raw: str | None, tool: str) -> ToolFacts:
    given = _object(raw, "--facts")
    if "side_effect" not in given:  # as the worker would: the tool's declared side effect
        try:
            from orchestrator.catalog.loader import load_catalog

            given["side_effect"] = load_catalog(get_settings().catalog_packages).tool(tool).spec.side_effect
        except Exception:
            pass  # not in the catalog: the strictest side effect
    try:
        return ToolFacts.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"--facts: {problems}") from exc


def explanation_json(result: Explanation) -> dict[str, Any]:
    d = result.decision
    approval = d.approval
    return {
        "decision": d.effect,
        "rule_id": d.rule_id,
        "rule": d.rule,
        "reason": d.reason,
        "policy_version": d.policy_version,
        "approval": None
        if approval is None
        else {
            "rule_id": approval.rule_id,
            "assignee_role": approval.assignee_role,
            "approvers_required": approval.approvers_required,
            "named_approvers": list(approval.named_approvers),
            "sla": [
                {"after_seconds": e.after_seconds, "add_roles": list(e.add_roles), "action": e.action}
                for e in approval.sla
            ],
        },
        "facts": result.facts.model_dump(),
        "considered": [
            {
                "id": c.rule.rule_id,
                "line": c.rule.line,
                "tenant": c.rule.tenant,
                "agent": c.rule.agent,
                "tool": c.rule.tool,
                "condition": c.rule.condition,
                "effect": c.rule.effect,
                "guard": c.rule.guard,
                "matched": c.matched,
                "error": c.error or None,
            }
            for c in result.checks
        ],
    }


def _print_explanation(result: Explanation) -> None:
    d = result.decision
    facts = " ".join(f"{k}={v}" for k, v in result.facts.model_dump().items())
    for label, value in [
        ("decision", d.effect),
        ("rule", d.rule or "(none: deny by default)"),
        ("reason", d.reason),
        ("approval", d.approval.describe() if d.approval else ""),
        ("version", d.policy_version),
        ("facts", facts),
    ]:
        if value:
            print(f"{label:<9} {value}")
    print("\nRules considered (the first match decides; a guard only turns an allow into approve)")
    rows = [("LINE", "RULE", "EFFECT", "MATCHED", "CONDITION")]
    for c in result.checks:
        matched = f"error: {c.error}" if c.error else ("yes" if c.matched else "no")
        effect = c.rule.effect + (" (guard)" if c.rule.guard else "")
        rows.append((str(c.rule.line), c.rule.rule_id, effect, matched, c.rule.condition))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )


def policy_explain(args: argparse.Namespace) -> int:
    try:
        call_args = _object(args.args, "--args")
        facts = _facts(args.facts, args.tool)
        engine = PolicyEngine(_dir(args))
    except UsageError as exc:
        print(f"error: {exc}")
        return 2
    except (OSError, PolicyError) as exc:
        print(f"error: the policies do not load ({exc}); run `frontdesk policy check`")
        return 2
    result = engine.explain(
        tenant_id=args.tenant, agent=args.agent, tool=args.tool, args=call_args, facts=facts
    )
    if args.json:
        print(json.dumps(explanation_json(result), indent=2, default=str))
    else:
        _print_explanation(result)
    return 0 if result.decision.effect == "allow" else 1


def policy_init(args: argparse.Namespace) -> int:
    """Copy the shipped policies to a folder of the operator's own, to edit and deploy."""
    import shutil

    from orchestrator.resources import DEFAULT_POLICIES_DIR

    target = Path(args.dir)
    names = sorted(p.name for p in DEFAULT_POLICIES_DIR.iterdir() if p.is_file())  # budgets and prices too
    clashes = [name for name in names if (target / name).exists()]
    if clashes and not args.force:
        print(f"error: {target} already has {', '.join(clashes)}; pass --force to overwrite")
        return 2
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(DEFAULT_POLICIES_DIR / name, target / name)
    print(f"copied the default policies to {target}; point FRONTDESK_POLICIES_DIR={target.resolve()} at it")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `policy` command group (`check`, `explain`, `init`); each sets `args.func(args) -> exit code`."""
    group = subparsers.add_parser("policy", help="lint the policy files and explain tool decisions")
    commands = group.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    text = "validate and lint the policy files; print every issue and the policy version"
    check = commands.add_parser("check", help=text, description=text)
    check.add_argument("--dir", help="policy folder (default: the settings' policies_dir)")
    check.set_defaults(func=policy_check)
    text = "copy the default policies (shipped in the package) to DIR, to edit and deploy"
    init = commands.add_parser("init", help=text, description=text)
    init.add_argument("dir", metavar="DIR", help="folder to create (FRONTDESK_POLICIES_DIR then names it)")
    init.add_argument("--force", action="store_true", help="overwrite policy files already in DIR")
    init.set_defaults(func=policy_init)
    text = "explain the decision on one tool call: the deciding rule and every rule considered"
    explain = commands.add_parser("explain", help=text, description=text)
    explain.add_argument("--tenant", required=True, help="tenant id, e.g. acme")
    explain.add_argument("--agent", required=True, help="agent name, e.g. refund_agent")
    explain.add_argument("--tool", required=True, help="tool name, e.g. issue_refund")
    explain.add_argument(
        "--args", default="{}", help='the tool arguments as a JSON object, e.g. \'{"amount": "250"}\''
    )
    explain.add_argument(
        "--facts",
        help="ToolFacts as a JSON object (side_effect defaults to the tool's; other missing facts "
        "take their strictest value)",
    )
    explain.add_argument("--dir", help="policy folder (default: the settings' policies_dir)")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(func=policy_explain)
