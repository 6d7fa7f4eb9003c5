"""`frontdesk audit verify|anchor|purge`: the audit chain, checked and kept, on the database.

They work on the database named in settings (FRONTDESK_DATABASE_URL), like `frontdesk tenant`:

    frontdesk audit verify [--tenant T] [--json]     walk each chain; name the first bad row
    frontdesk audit anchor [--tenant T]              sign the heads into FRONTDESK_AUDIT_ANCHOR_FILE
    frontdesk audit purge --before YYYY-MM-DD [--tenant T]    retention; nothing under 183 days
    frontdesk audit verify-bundle FILE [--anchor-key-file K] [--anchor-public-key P] [--require-anchor]
                                                     check a task's evidence bundle, no database
    frontdesk audit keygen --out FILE                a new Ed25519 anchor signing key (mode 0600)
    frontdesk audit public-key [--key-file FILE]     print its public key, to publish

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

from orchestrator import anchor_keys, audit_anchor, audit_retention, audit_verify, evidence
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


def _configured(settings: Settings) -> tuple[str, anchor_keys.Keys] | None:
    try:
        return audit_anchor.configured(settings)
    except ValueError as exc:  # an unusable signing key file
        raise ServiceError(str(exc)) from None


def audit_verify_cmd(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    where = _configured(settings)
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
    where = _configured(settings)
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
    where = _configured(settings)
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
        key = Path(args.anchor_key_file).read_bytes().strip() if args.anchor_key_file else None
        public = anchor_keys.load_public_key(args.anchor_public_key) if args.anchor_public_key else None
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except ValueError as exc:
        return _fail(f"--anchor-public-key: {exc}", 2)
    try:
        raw = json.loads(Path(args.file).read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except ValueError as exc:
        print(f"BROKEN: {args.file} is not JSON: {exc}")
        return 1
    verdict = evidence.verify(raw, anchor_keys.Keys(hmac=key or None, public=public))
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


def audit_keygen_cmd(args: argparse.Namespace) -> int:
    """A new private key in a new file (never over an existing one); prints only the public key."""
    try:
        key = anchor_keys.write_private_key(args.out)
    except FileExistsError:
        return _fail(f"{args.out} exists: a signing key is never overwritten (choose another file)", 2)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror}", 2)
    public = key.public_key()
    print(anchor_keys.public_text(public))
    print(
        f"wrote an Ed25519 private key (key id {anchor_keys.public_key_id(public)}) to {args.out}, "
        "mode 0600; set FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE to it and publish the public key above (docs/audit.md)",
        file=sys.stderr,
    )
    return 0


def audit_public_key_cmd(args: argparse.Namespace) -> int:
    """The public key of --key-file, else of FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE: base64 of
    its 32 raw bytes (docs/audit.md)."""
    path = args.key_file
    if not path:
        try:
            path = get_settings().audit_anchor_signing_key_file
        except ValidationError as exc:
            return _fail(f"the settings do not load: {exc.errors()[0]['msg']}", 2)
        if not path:
            return _fail("no signing key: set FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE or give --key-file", 2)
    try:
        public = anchor_keys.load_private_key(path).public_key()
    except ValueError as exc:
        return _fail(str(exc), 2)
    print(anchor_keys.public_text(public))
    print(f"key id {anchor_keys.public_key_id(public)}", file=sys.stderr)
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
        "--anchor-public-key",
        metavar="FILE_OR_VALUE",
        help="the operator's Ed25519 anchor public key (base64 or PEM, a file or the value), to check the "
        "anchor's Ed25519 signature without any secret",
    )
    bundle.add_argument(
        "--require-anchor", action="store_true", help="fail when the bundle is not linked to an anchored head"
    )
    bundle.set_defaults(func=audit_verify_bundle_cmd)
    text = "write a new Ed25519 anchor signing key (PEM, mode 0600) and print its public key"
    keygen = commands.add_parser("keygen", help=text, description=text)
    keygen.add_argument("--out", required=True, help="the new private key file (never overwritten)")
    keygen.set_defaults(func=audit_keygen_cmd)
    text = "print the anchor signing key's public key (base64 of its 32 raw bytes), to publish"
    public_key = commands.add_parser("public-key", help=text, description=text)
    public_key.add_argument(
        "--key-file", help="the private key file (default: FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE)"
    )
    public_key.set_defaults(func=audit_public_key_cmd)
