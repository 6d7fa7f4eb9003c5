"""`frontdesk audit verify|anchor|purge`: the audit chain, checked and kept, on the database.

They work on the database named in settings (FRONTDESK_DATABASE_URL), like `frontdesk tenant`:

    frontdesk audit verify [--tenant T] [--json]     walk each chain; name the first bad row
    frontdesk audit anchor [--tenant T]              sign the heads into FRONTDESK_AUDIT_ANCHOR_FILE
    frontdesk audit purge --before YYYY-MM-DD [--tenant T]    retention; nothing under 183 days
    frontdesk audit verify-bundle FILE [--anchor-key-file K] [--require-anchor]
                                                     check a task's evidence bundle, no database

`verify` holds each chain against its head row and, with FRONTDESK_AUDIT_ANCHOR_FILE, against
every signed anchor, so deleted newest rows and rewritten chains show too (docs/audit.md).
Exit codes: 0 verified / done; 1 a chain (or the anchor file) is broken, or the database cannot
be used; 2 bad input or refused (a cut-off younger than 183 days, anchoring not configured).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from orchestrator import audit_anchor, audit_retention, audit_verify, evidence
from orchestrator.cli.accounts_cmd import actor
from orchestrator.db import make_engine, session_scope
from orchestrator.errors import ServiceError
from orchestrator.services import accounts
from orchestrator.settings import Settings, get_settings


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _on_database(
    command: Callable[[argparse.Namespace, Settings, Engine], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            settings = get_settings()
        except ValidationError as exc:
            return _fail(f"the settings do not load: {exc.errors()[0]['msg']}", 2)
        engine = make_engine(settings.effective_database_url)
        try:
            problem = accounts.schema_problem(engine)
            if problem:
                return _fail(problem, 1)
            return command(args, settings, engine)
        except ServiceError as exc:
            return _fail(str(exc), 2)
        except SQLAlchemyError as exc:
            return _fail(f"the database cannot be used: {type(exc).__name__}: {str(exc).splitlines()[0]}", 1)
        finally:
            engine.dispose()

    return run


def audit_verify_cmd(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    where = audit_anchor.configured(settings)
    log = audit_anchor.read(*where) if where else None
    reports: list[audit_verify.Report] = []
    with Session(engine) as session:
        names = (
            [args.tenant]
            if args.tenant
            else audit_verify.tenants(session, list(log.by_tenant) if log else [])
        )
        for tenant in names:
            reports.append(audit_verify.verify_tenant(session, tenant, log.of(tenant) if log else None))
            session.rollback()  # each tenant in its own snapshot; nothing is held between them
    bad_lines = [p for p in (log.problems if log else []) if "incomplete" not in p]
    if args.json:
        out = {"anchor_file": where[0] if where else None, "anchor_problems": log.problems if log else []}
        print(json.dumps({**out, "tenants": [r.as_dict() for r in reports]}, indent=2))
    else:
        for r in reports:
            print(r.summary)
        notes = sorted({n for r in reports for n in r.notes} | set(log.problems if log else []))
        for note in notes:
            print(f"note: {note}")
        if not reports:
            print("no audit events in this database")
    broken = [r for r in reports if not r.ok]
    if broken or bad_lines:
        print(f"{len(broken)} broken chain(s), {len(bad_lines)} bad anchor line(s)", file=sys.stderr)
        return 1
    return 0


def audit_anchor_cmd(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    where = audit_anchor.configured(settings)
    if where is None:
        return _fail("anchoring is off: set FRONTDESK_AUDIT_ANCHOR_FILE and FRONTDESK_AUDIT_ANCHOR_KEY", 2)
    results = audit_anchor.Anchorer(engine, *where).run(args.tenant)
    for r in results:
        if r.problem:
            print(f"tenant {r.tenant_id}: NOT anchored: {r.problem}")
        else:
            state = "anchored" if r.written else "unchanged since its last anchor"
            print(f"tenant {r.tenant_id}: seq {r.seq} {r.hash[:16]}… {state}")
    if not results:
        print("no audit chains to anchor")
    return 1 if any(r.problem for r in results) else 0


def _cutoff(raw: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def audit_purge_cmd(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    before = audit_retention.check_cutoff(args.before)  # refused before anything is read
    with Session(engine) as session:
        names = [args.tenant] if args.tenant else audit_verify.tenants(session)
    where = audit_anchor.configured(settings)
    for tenant in names:
        with session_scope(engine) as session:
            done = audit_retention.purge(session, tenant, before, args.actor or actor())
            if done.deleted and where is not None:  # signed before the commit: verify needs it
                path, key = where
                line = audit_anchor.sign(
                    key, tenant, done.through_seq, done.through_hash, kind=audit_verify.PURGE
                )
                audit_anchor.append(path, [line])
        if done.deleted:
            print(
                f"tenant {tenant}: {done.deleted} event(s) up to seq {done.through_seq} purged; "
                f"recorded as seq {done.event_seq} (audit.purged)"
            )
        else:
            print(f"tenant {tenant}: nothing written before {before.date()}")
    return 0


def audit_verify_bundle_cmd(args: argparse.Namespace) -> int:
    """Needs no settings and no database: a third party runs it on a downloaded bundle."""
    try:
        raw = json.loads(Path(args.file).read_bytes())
        key = Path(args.anchor_key_file).read_bytes().strip() if args.anchor_key_file else None
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except ValueError as exc:
        print(f"BROKEN: {args.file} is not JSON: {exc}")
        return 1
    verdict = evidence.verify(raw, key)
    for line in verdict.checked:
        print(f"checked: {line}")
    for note in verdict.notes:
        print(f"note: {note}")
    if not verdict.ok:
        print(f"BROKEN: {verdict.problem}")
        return 1
    if args.require_anchor and raw.get("audit", {}).get("anchor") is None:
        print("BROKEN: --require-anchor, and the bundle is not linked to an anchored head")
        return 1
    print("OK: every digest and hash in the bundle checks")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("audit", help="verify, anchor and purge the audit trail (on the database)")
    commands = group.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    text = "walk each tenant's chain and name the first bad row (exit 1 if one is broken)"
    verify = commands.add_parser("verify", help=text, description=text)
    verify.add_argument("--tenant", help="one tenant (default: every tenant with events)")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(func=_on_database(audit_verify_cmd))
    text = "sign each moved chain head into FRONTDESK_AUDIT_ANCHOR_FILE (after verifying the new rows)"
    anchor = commands.add_parser("anchor", help=text, description=text)
    anchor.add_argument("--tenant", help="one tenant (default: all)")
    anchor.set_defaults(func=_on_database(audit_anchor_cmd))
    text = f"remove events written before a date at least {audit_retention.RETENTION_DAYS} days ago"
    purge = commands.add_parser("purge", help=text, description=text)
    purge.add_argument("--before", required=True, type=_cutoff, help="YYYY-MM-DD (UTC midnight)")
    purge.add_argument("--tenant", help="one tenant (default: all)")
    purge.add_argument("--actor", help="who the trail names (default: cli:<os user>)")
    purge.set_defaults(func=_on_database(audit_purge_cmd))
    text = "check a task's evidence bundle (GET /api/tasks/{id}/evidence) offline: exit 1 names the first bad part"
    bundle = commands.add_parser("verify-bundle", help=text, description=text)
    bundle.add_argument("file", help="the bundle, as JSON")
    bundle.add_argument(
        "--anchor-key-file",
        help="a file holding FRONTDESK_AUDIT_ANCHOR_KEY, to check the anchor's HMAC (else it is reported unchecked)",
    )
    bundle.add_argument(
        "--require-anchor", action="store_true", help="fail when the bundle is not linked to an anchored head"
    )
    bundle.set_defaults(func=audit_verify_bundle_cmd)
