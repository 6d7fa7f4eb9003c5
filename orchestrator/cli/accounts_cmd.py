"""`frontdesk tenant|user|token`: the operator's bootstrap of tenants, people and API tokens.

They work on the database named in settings (FRONTDESK_DATABASE_URL), not through the API, so
they run before any token exists; they refuse a database that is not at the newest schema.

    frontdesk tenant add ID --name NAME [--domain DOMAIN]
    frontdesk tenant list [--json]
    frontdesk tenant revoke ID            disable it: its tokens and web sessions stop working
    frontdesk tenant enable ID            enable it again: its tokens work again, people sign in again
    frontdesk user add EMAIL --tenant ID --role ROLE [--role ROLE ...] [--name NAME]
                       [--password-stdin | --new-password]
    frontdesk user list --tenant ID [--json]
    frontdesk user revoke EMAIL --tenant ID   its roles, tokens and web sessions in the tenant
    frontdesk token add EMAIL --tenant ID [--label TEXT]    the token alone on the last line
    frontdesk token list --tenant ID [--email EMAIL] [--json]
    frontdesk token revoke TOKEN_ID --tenant ID

A new user gets the password read from standard input (`--password-stdin`) or a generated one,
printed once as the last line; an existing user keeps theirs unless either flag asks for a new
one. Every change is audited in the tenant's chain; passwords and tokens never are.

Exit codes: 0 done (or nothing to change), 1 the database cannot be used (unreachable, not
migrated), 2 bad input (unknown tenant or person, bad e-mail, id or role, weak password).
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlmodel import Session

from orchestrator.cli.output import columns, table
from orchestrator.db import make_engine, session_scope
from orchestrator.errors import ServiceError
from orchestrator.services import accounts
from orchestrator.services.people import list_people
from orchestrator.settings import get_settings

Report = Callable[[], None]  # prints the outcome; called only once the change is committed
Command = Callable[[argparse.Namespace, Session], Report]


class UsageError(Exception):
    pass


def actor() -> str:
    """Who the audit trail names for these changes.

    No principal exists here: the commands run before any token or session does, by whoever holds
    the database credentials. The OS account that ran them is the best name the trail can get
    (self-declared, like any login name); `cli:` keeps it apart from user ids and the seed's `system`.
    """
    try:
        name = getpass.getuser()
    except Exception:  # no login name in the environment or password database (some containers)
        name = "unknown"
    return f"cli:{name}"


def _database_error(exc: SQLAlchemyError) -> str:
    # The driver's first line says what failed; SQLAlchemy's own text would add the statement and
    # its parameters, which can hold a password or token hash.
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause: BaseException = exc.orig
    elif isinstance(exc, StatementError):
        return f"cannot use the database ({type(exc).__name__})"
    else:
        cause = exc  # e.g. a URL naming no installed driver: no statement, no parameters
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"cannot use the database ({type(cause).__name__}: {first})"


def _guarded(command: Command) -> Callable[[argparse.Namespace], int]:
    """Open the settings' database, refuse an old schema, run `command` in one transaction and
    print its lines after the commit (a token is never shown for a change that did not land)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            url = get_settings().effective_database_url
        except ValidationError as exc:
            return _fail(f"the settings do not load: {exc.errors()[0]['msg']}", 2)
        engine = None
        try:
            engine = make_engine(url)
            problem = accounts.schema_problem(engine)
            if problem:
                return _fail(problem, 1)
            with session_scope(engine) as session:
                report = command(args, session)
        except (ServiceError, UsageError) as exc:
            return _fail(str(exc), 2)
        except SQLAlchemyError as exc:
            return _fail(_database_error(exc), 1)
        finally:
            if engine is not None:
                engine.dispose()
        report()
        return 0

    return run


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _say(*lines: str) -> Report:
    return lambda: print("\n".join(lines))


def _json(items: list[BaseModel] | BaseModel) -> Report:
    value: Any = (
        [i.model_dump(mode="json") for i in items]
        if isinstance(items, list)
        else items.model_dump(mode="json")
    )
    return _say(json.dumps(value, indent=2, ensure_ascii=False))


def _table(spec: str, items: list[dict[str, Any]], empty: str) -> Report:
    return (lambda: table(columns(spec), items)) if items else _say(empty)


# --- tenant --------------------------------------------------------------------------------------


def tenant_add(args: argparse.Namespace, session: Session) -> Report:
    tenant = accounts.add_tenant(session, actor(), args.id, args.name, args.domain or "")
    return _say(f"tenant {tenant.id} added ({tenant.name}); add its first admin with `frontdesk user add`")


def tenant_list(args: argparse.Namespace, session: Session) -> Report:
    tenants = accounts.list_tenants(session)
    if args.json:
        return _json(list(tenants))
    spec = "ID=id NAME=name DOMAIN=domain MEMBERS=members CREATED=created_at DISABLED=disabled_at"
    return _table(spec, [t.model_dump(mode="json") for t in tenants], "no tenants yet")


def tenant_revoke(args: argparse.Namespace, session: Session) -> Report:
    tenant, changed = accounts.disable_tenant(session, actor(), args.id)
    if not changed:
        return _say(f"tenant {tenant.id} was already disabled (since {tenant.disabled_at}): nothing changed")
    return _say(f"tenant {tenant.id} disabled: its API tokens and web sessions stop working now")


def tenant_enable(args: argparse.Namespace, session: Session) -> Report:
    tenant, ended = accounts.enable_tenant(session, actor(), args.id)
    if ended is None:
        return _say(f"tenant {tenant.id} is not disabled: nothing changed")
    return _say(
        f"tenant {tenant.id} enabled: its API tokens work again (revoke unwanted ones with "
        f"`frontdesk token revoke`); {ended} web session(s) from before stay ended, people sign in again"
    )


# --- user ----------------------------------------------------------------------------------------


def _password(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(password to set or None, generated here)."""
    if args.password_stdin:
        if sys.stdin.isatty():  # typed by a person: do not echo it
            raw = getpass.getpass("password: ")
        else:
            raw = sys.stdin.read()
        password = raw.rstrip("\r\n")  # the line end `echo` or a file adds is not part of it
        if not password:
            raise UsageError("standard input held no password: pipe one in, or drop --password-stdin")
        return password, False
    return None, bool(args.new_password)


def user_add(args: argparse.Namespace, session: Session) -> Report:
    password, generate = _password(args)
    email = accounts.normalize_email(args.email)
    if password is None and (generate or accounts.find_user(session, email) is None):
        password, generate = accounts.new_password(), True
    result = accounts.add_user(
        session, actor(), args.tenant, email, args.role, name=args.name, password=password
    )
    person = result.person
    if result.created or result.roles_added or result.password_set or result.renamed:
        what = "created in" if result.created else "updated in"
    else:
        what = "already holds these roles in"  # and no new password was asked for: nothing changed
    lines = [
        f"user {person.email} ({person.id}) {what} tenant {args.tenant}; roles there: {', '.join(person.roles)}"
    ]
    if generate and password is not None:
        lines += ["password (shown once; store it now):", password]
    return _say(*lines)


def user_list(args: argparse.Namespace, session: Session) -> Report:
    accounts.get_tenant(session, args.tenant)
    people = list_people(session, args.tenant)
    if args.json:
        return _json(people)
    items = [{**p.model_dump(), "roles": ", ".join(p.roles)} for p in people.items]
    return _table("EMAIL=email NAME=name ROLES=roles ID=id", items, f"no people in tenant {args.tenant}")


def user_revoke(args: argparse.Namespace, session: Session) -> Report:
    result = accounts.remove_user(session, actor(), args.tenant, args.email)
    return _say(
        f"user {result.person.email} removed from tenant {args.tenant} (roles {', '.join(result.person.roles)}); "
        f"{result.tokens_revoked} API token(s) and {result.sessions_revoked} web session(s) revoked"
    )


# --- token ---------------------------------------------------------------------------------------


def token_add(args: argparse.Namespace, session: Session) -> Report:
    listed, token = accounts.add_token(session, actor(), args.tenant, args.email, args.label or "")
    return _say(
        f"token {listed.id} for {listed.email} in tenant {listed.tenant_id} created; "
        "shown once below, store it now:",
        token,
    )


def token_list(args: argparse.Namespace, session: Session) -> Report:
    tokens = accounts.list_tokens(session, args.tenant, args.email)
    if args.json:
        return _json(list(tokens))
    spec = "ID=id EMAIL=email LABEL=label CREATED=created_at REVOKED=revoked_at"
    return _table(spec, [t.model_dump(mode="json") for t in tokens], f"no API tokens in tenant {args.tenant}")


def token_revoke(args: argparse.Namespace, session: Session) -> Report:
    token, changed = accounts.revoke_token(session, actor(), args.tenant, args.token_id)
    if not changed:
        return _say(f"token {token.id} was already revoked (at {token.revoked_at}): nothing changed")
    return _say(f"token {token.id} of {token.email} revoked: it stops working now")


# --- argparse ------------------------------------------------------------------------------------


def _leaf(group: Any, name: str, command: Command, help_text: str, *, json_flag: bool = False) -> Any:
    parser = group.add_parser(name, help=help_text, description=help_text)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=_guarded(command))
    return parser


def _tenant_flag(parser: Any) -> None:
    parser.add_argument("--tenant", required=True, metavar="ID", help="the tenant's id")


def register(subparsers: Any) -> None:
    tenant = subparsers.add_parser(
        "tenant", help="add, list, disable or enable tenants (on the database, before any token exists)"
    ).add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    p = _leaf(tenant, "add", tenant_add, "add a tenant")
    p.add_argument("id", metavar="ID", help="lower-case letters, digits and -, e.g. acme")
    p.add_argument("--name", required=True, help="the tenant's display name")
    p.add_argument("--domain", help="the tenant's own e-mail domain (a policy fact), e.g. acme.com")
    _leaf(tenant, "list", tenant_list, "list every tenant", json_flag=True)
    p = _leaf(tenant, "revoke", tenant_revoke, "disable a tenant: its tokens and web sessions stop working")
    p.add_argument("id", metavar="ID")
    p = _leaf(tenant, "enable", tenant_enable, "enable a disabled tenant again: its tokens work again")
    p.add_argument("id", metavar="ID")

    user = subparsers.add_parser("user", help="add, list or remove the people of a tenant").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    p = _leaf(user, "add", user_add, "add a person to a tenant with roles (creating the user if new)")
    p.add_argument("email", metavar="EMAIL")
    _tenant_flag(p)
    p.add_argument(
        "--role", required=True, action="append",
        help=f"a role to grant (repeat for several): {', '.join(accounts.OPERATOR_ROLES)}",
    )  # fmt: skip
    p.add_argument("--name", help="display name (default for a new user: the e-mail's local part)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    secret.add_argument(
        "--new-password",
        action="store_true",
        help="generate a new password for an existing user and print it",
    )
    p = _leaf(user, "list", user_list, "list the people of a tenant and their roles there", json_flag=True)
    _tenant_flag(p)
    p = _leaf(user, "revoke", user_revoke, "remove a person from a tenant: roles, API tokens, web sessions")
    p.add_argument("email", metavar="EMAIL")
    _tenant_flag(p)

    token = subparsers.add_parser("token", help="create, list or revoke API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    p = _leaf(
        token, "add", token_add, "create an API token for a member of a tenant (printed once, last line)"
    )
    p.add_argument("email", metavar="EMAIL")
    _tenant_flag(p)
    p.add_argument("--label", help="what the token is for, e.g. ci")
    p = _leaf(
        token, "list", token_list, "list a tenant's API tokens (never the tokens themselves)", json_flag=True
    )
    _tenant_flag(p)
    p.add_argument("--email", help="only this person's tokens")
    p = _leaf(token, "revoke", token_revoke, "revoke an API token by its id (tok_…)")
    p.add_argument("token_id", metavar="TOKEN_ID")
    _tenant_flag(p)
