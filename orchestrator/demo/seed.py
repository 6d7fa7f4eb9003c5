"""Migrations plus the demo tenant `acme`: a requester, two approvers, an admin, a developer, demo
orders and helpdesk tickets.

Demo credentials are derived from a random secret kept in the state dir, so they are stable
for one installation (the dev stack can print them every start) and differ between installs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from orchestrator.db import make_engine, migrate, session_scope
from orchestrator.demo.catalog.tables import DemoOrder, DemoTicket
from orchestrator.models import Tenant, User
from orchestrator.security import TOKEN_PREFIX
from orchestrator.services import accounts
from orchestrator.settings import Settings

DEMO_TENANT = "acme"
DEMO_USERS: list[tuple[str, str, list[str]]] = [
    ("riley@acme.example", "Riley Requester", ["requester"]),
    ("avery@acme.example", "Avery Approver", ["approver"]),
    # A second approver: refunds of 500 to 1000 need two distinct approvers (orchestrator/policy/defaults/approvals.yaml).
    ("blake@acme.example", "Blake Approver", ["approver"]),
    ("ada@acme.example", "Ada Admin", ["admin"]),
    ("dana@acme.example", "Dana Developer", ["developer"]),
]
# A second demo tenant, so people in several tenants see the tenant switcher: (email, roles there).
SECOND_TENANT = ("acme-eu", "Acme Europe (demo)")
SECOND_TENANT_MEMBERS: list[tuple[str, list[str]]] = [
    ("ada@acme.example", ["admin"]),
    ("avery@acme.example", ["approver"]),
]
DEMO_ORDERS: list[tuple[str, str, str, str, str]] = [
    ("ORD-1001", "Jane Doe", "jane@example.com", "40.00", "EUR"),
    ("ORD-1002", "Omar Haddad", "omar@example.com", "250.00", "EUR"),
    ("ORD-1003", "Li Wei", "li@example.com", "1800.00", "EUR"),
    ("ORD-1004", "Sam Carter", "sam@example.com", "99.00", "USD"),
    ("ORD-1005", "Ana Souza", "ana@example.com", "640.00", "EUR"),
]
# id, customer, e-mail, subject, body: what the ticket triage sample works on.
DEMO_TICKETS: list[tuple[str, str, str, str, str]] = [
    (
        "TCK-2001", "Jane Doe", "jane@example.com", "Cannot log in since the last update",
        "Since yesterday's app update I can't sign in any more. The password reset link says it has "
        "expired every time I click it.",
    ),
    (
        "TCK-2002", "Omar Haddad", "omar@example.com", "Charged twice this month",
        "My credit card was charged twice (2 x 49 EUR) for the same invoice INV-5531. Please refund the "
        "duplicate payment.",
    ),
    (
        "TCK-2003", "Li Wei", "li@example.com", "Request to erase my personal data",
        "Under Article 17 of the GDPR I ask you to erase all personal data you hold about me and to "
        "confirm the erasure in writing.",
    ),
    (
        "TCK-2004", "Sam Carter", "sam@example.com", "CSV export fails",
        "Exporting the monthly report to CSV fails with 'Error 500'. It worked last week, and the PDF "
        "export still works.",
    ),
    (
        "TCK-2005", "Ana Souza", "ana@example.com", "Moving to the Business plan",
        "We would like to upgrade from Starter to the Business plan and add five more seats for new "
        "team members. How do we do that?",
    ),
    (
        "TCK-2006", "Chris Miller", "chris@example.com", "Help",
        "Hi, it is not working again and I'm getting really frustrated. Can someone please look into "
        "this today?",
    ),
    (
        "TCK-2007", "Noor Khan", "noor@example.com", "Locked out and charged again",
        "I have been locked out since I changed my password, and meanwhile you charged my card again "
        "for a month I cannot use.",
    ),
]  # fmt: skip


@dataclass
class SeedInfo:
    tenant: str
    logins: list[tuple[str, str, list[str]]] = field(default_factory=list)  # email, password, roles
    tokens: list[tuple[str, str]] = field(default_factory=list)  # email, token


def _demo_secret(state_dir: Path) -> bytes:
    path = state_dir / "demo-secret"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _derive(secret: bytes, purpose: str, email: str) -> str:
    return hmac.new(secret, f"{purpose}:{email}".encode(), hashlib.sha256).hexdigest()


# The rows are built by the same helpers as `frontdesk tenant|user|token` (services.accounts); the
# seed, as before, audits only the tenants it creates.


def ensure_user(
    session: Session, tenant_id: str, email: str, name: str, roles: list[str], *, password: str | None = None
) -> User:
    user, _ = accounts.put_user(session, email, name, password)
    accounts.put_roles(session, tenant_id, user.id, roles)
    return user


def ensure_token(
    session: Session, user: User, tenant_id: str, token: str | None = None, label: str = ""
) -> str:
    return accounts.put_token(session, user.id, tenant_id, label, token)[1]


def ensure_tenant(session: Session, tenant_id: str, name: str, domain: str = "") -> Tenant:
    return accounts.ensure_tenant(session, "system", tenant_id, name, domain or f"{tenant_id}.example")


def seed_demo(engine: Engine, state_dir: Path) -> SeedInfo:
    secret = _demo_secret(state_dir)
    info = SeedInfo(tenant=DEMO_TENANT)
    with session_scope(engine) as session:
        ensure_tenant(session, DEMO_TENANT, "Acme Retail (demo)")
        for email, name, roles in DEMO_USERS:
            password = "demo-" + _derive(secret, "password", email)[:10]
            token = TOKEN_PREFIX + _derive(secret, "token", email)[:40]
            user = ensure_user(session, DEMO_TENANT, email, name, roles, password=password)
            ensure_token(session, user, DEMO_TENANT, token, label="demo")
            info.logins.append((email, password, roles))
            info.tokens.append((email, token))
        ensure_tenant(session, *SECOND_TENANT)
        for email, roles in SECOND_TENANT_MEMBERS:
            member = session.exec(select(User).where(User.email == email)).one()
            ensure_user(session, SECOND_TENANT[0], email, member.name, roles)
        for order_id, customer, email, amount, currency in DEMO_ORDERS:
            if session.get(DemoOrder, order_id) is None:
                session.add(
                    DemoOrder(
                        id=order_id,
                        tenant_id=DEMO_TENANT,
                        customer=customer,
                        email=email,
                        amount=Decimal(amount),
                        currency=currency,
                        status="delivered",
                    )
                )
        for ticket_id, customer, email, subject, body in DEMO_TICKETS:
            if session.get(DemoTicket, ticket_id) is None:
                session.add(
                    DemoTicket(
                        id=ticket_id,
                        tenant_id=DEMO_TENANT,
                        customer=customer,
                        email=email,
                        subject=subject,
                        body=body,
                        status="open",
                    )
                )
    return info


def prepare_database(settings: Settings) -> SeedInfo:
    """Upgrade the schema and seed the demo tenant (development only)."""
    url = settings.effective_database_url
    migrate(url)
    engine = make_engine(url)
    try:
        if settings.environment != "development":
            return SeedInfo(tenant="")
        info = seed_demo(engine, settings.state_dir)
    finally:
        engine.dispose()
    # The CLI client reads the requester's token from here when no --token is given.
    token_file = settings.state_dir / "cli-token"
    token_file.write_text(info.tokens[0][1])
    token_file.chmod(0o600)
    return info
