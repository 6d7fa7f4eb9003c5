"""`frontdesk tenant|user|token` on a fresh, migrated SQLite database: the operator's bootstrap.

Each test drives `orchestrator.cli.main.main([...])` with FRONTDESK_DATABASE_URL pointing at its
own database, then checks the rows through the real API app (the printed token), the web sign-in
(the printed password) and the audit chain (every change recorded, no secret in it).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.app import build_state, create_app
from orchestrator.cli.main import main
from orchestrator.db import make_engine, migrate
from orchestrator.models import ApiToken, AuditEvent, Membership, User, WebSession
from orchestrator.security import hash_token
from orchestrator.settings import Settings, get_settings
from orchestrator.web import sessions

PASSWORD = "correct horse battery staple"


@dataclass
class Cli:
    url: str
    engine: Engine
    settings: Settings
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    def ok(self, *argv: str, stdin: str | None = None) -> str:
        code, out, err = self(*argv, stdin=stdin)
        assert code == 0, err
        return out

    def events(self, tenant: str) -> list[AuditEvent]:
        with Session(self.engine) as s:
            return list(
                s.exec(select(AuditEvent).where(AuditEvent.tenant_id == tenant).order_by(col(AuditEvent.seq)))
            )

    async def get(self, path: str, token: str) -> httpx.Response:
        app = create_app(self.settings, state=build_state(self.settings, engine=self.engine))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk") as http:
            return await http.get(path, headers={"Authorization": f"Bearer {token}"})


def _use_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> Settings:
    monkeypatch.chdir(tmp_path)  # no developer's .env is read
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", url)
    monkeypatch.setenv("FRONTDESK_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    return Settings(_env_file=None, database_url=url, state_dir=tmp_path / "state")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    url = f"sqlite:///{tmp_path / 'frontdesk.db'}"
    migrate(url)
    settings = _use_database(monkeypatch, tmp_path, url)
    engine = make_engine(url)
    monkeypatch.setattr("getpass.getuser", lambda: "opsperson")
    yield Cli(url, engine, settings, capsys, monkeypatch)
    engine.dispose()
    get_settings.cache_clear()


def _secrets_absent(cli: Cli, tenant: str, *secrets: str) -> None:
    with Session(cli.engine) as s:
        stored = [u.password_hash for u in s.exec(select(User)) if u.password_hash]
        stored += [t.token_hash for t in s.exec(select(ApiToken))]
    rows = [" ".join([e.actor, e.action, e.subject, e.reason, e.data_json]) for e in cli.events(tenant)]
    for secret in [*secrets, *stored]:
        assert not any(secret in row for row in rows), "a secret reached the audit trail"


def _chain_ok(cli: Cli, tenant: str) -> None:
    with Session(cli.engine) as s:
        ok, why = audit.verify_chain(s, tenant)
    assert ok, why


# --- the bootstrap ------------------------------------------------------------------------------


async def test_bootstrap_a_tenant_its_admin_and_a_token_that_the_api_accepts(cli: Cli) -> None:
    assert "tenant acme added" in cli.ok(
        "tenant", "add", "acme", "--name", "Acme Inc", "--domain", "Acme.com"
    )
    out = cli.ok("user", "add", "Ada@Acme.com", "--tenant", "acme", "--role", "admin", "--role", "requester",
                 "--name", "Ada Admin")  # fmt: skip
    assert "created in tenant acme" in out and "admin, requester" in out
    password = out.strip().splitlines()[-1]
    assert len(password) >= 12 and password not in out.strip().splitlines()[0]

    out = cli.ok("token", "add", "ada@acme.com", "--tenant", "acme", "--label", "ci")
    token = out.strip().splitlines()[-1]  # what `| tail -1` captures
    assert token.startswith("fd_") and " " not in token

    r = await cli.get("/api/users", token)
    assert r.status_code == 200, r.text
    assert r.json()["tenant_id"] == "acme"
    assert [(p["email"], p["name"], p["roles"]) for p in r.json()["items"]] == [
        ("ada@acme.com", "Ada Admin", ["admin", "requester"])
    ]
    with Session(cli.engine) as s:
        signed = sessions.sign_in(s, "ada@acme.com", password)
        assert signed is not None and signed[1].tenant_id == "acme"
        assert sessions.sign_in(s, "ada@acme.com", password + "x") is None

    events = cli.events("acme")
    assert [(e.action, e.actor) for e in events] == [
        ("tenant.created", "cli:opsperson"),
        ("user.created", "cli:opsperson"),
        ("user.role_granted", "cli:opsperson"),
        ("user.role_granted", "cli:opsperson"),
        ("token.created", "cli:opsperson"),
        ("web.signed_in", f"user:{signed[1].user_id}"),
    ]
    assert json.loads(events[0].data_json) == {"name": "Acme Inc", "domain": "acme.com"}
    _chain_ok(cli, "acme")
    _secrets_absent(cli, "acme", password, token)


async def test_a_revoked_token_is_refused_and_listing_never_shows_a_secret(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin")
    first = (
        cli.ok("token", "add", "ada@acme.com", "--tenant", "acme", "--label", "laptop")
        .strip()
        .splitlines()[-1]
    )
    second = cli.ok("token", "add", "ada@acme.com", "--tenant", "acme").strip().splitlines()[-1]

    listed = json.loads(cli.ok("token", "list", "--tenant", "acme", "--json"))
    assert [t["label"] for t in listed] == ["laptop", ""]
    assert set(listed[0]) == {"id", "tenant_id", "user_id", "email", "label", "created_at", "revoked_at"}
    table = cli.ok("token", "list", "--tenant", "acme")
    for secret in (first, second, hash_token(first), hash_token(second)):
        assert secret not in table and secret not in json.dumps(listed)
    assert listed[0]["id"] in table and "laptop" in table

    out = cli.ok("token", "revoke", listed[0]["id"], "--tenant", "acme")
    assert "revoked" in out
    assert (await cli.get("/api/users", first)).status_code == 401
    assert (await cli.get("/api/users", second)).status_code == 200
    again = cli.ok("token", "revoke", listed[0]["id"], "--tenant", "acme")
    assert "already revoked" in again  # no second event for no change
    listed = json.loads(cli.ok("token", "list", "--tenant", "acme", "--email", "ADA@acme.com", "--json"))
    assert [t["revoked_at"] is not None for t in listed] == [True, False]
    assert [e.action for e in cli.events("acme")].count("token.revoked") == 1
    _chain_ok(cli, "acme")
    _secrets_absent(cli, "acme", first, second)


def test_listing_tenants_and_people(cli: Cli) -> None:
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("user", "add", "bo@acme.com", "--tenant", "acme", "--role", "approver", "--name", "Bo")
    cli.ok(
        "user",
        "add",
        "al@acme.com",
        "--tenant",
        "acme",
        "--role",
        "admin",
        "--role",
        "developer",
        "--name",
        "Al",
    )
    tenants = json.loads(cli.ok("tenant", "list", "--json"))
    assert [(t["id"], t["name"], t["members"], t["disabled_at"]) for t in tenants] == [
        ("acme", "Acme", 2, None),
        ("beta", "Beta", 0, None),
    ]
    people = json.loads(cli.ok("user", "list", "--tenant", "acme", "--json"))
    assert [(p["email"], p["roles"]) for p in people["items"]] == [
        ("al@acme.com", ["admin", "developer"]),
        ("bo@acme.com", ["approver"]),
    ]
    table = cli.ok("user", "list", "--tenant", "acme")
    assert "al@acme.com" in table and "admin, developer" in table
    assert "no people" in cli.ok("user", "list", "--tenant", "beta")


# --- people across tenants, passwords -----------------------------------------------------------


def test_an_existing_user_joins_another_tenant_without_a_new_password(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    out = cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin",
                 "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert PASSWORD not in out and "shown once" not in out
    out = cli.ok("user", "add", "ada@acme.com", "--tenant", "beta", "--role", "approver")
    assert "updated in tenant beta" in out and "shown once" not in out
    out = cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin", "--role", "approver")
    assert "roles there: admin, approver" in out
    assert "already holds" in cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin")
    with Session(cli.engine) as s:
        assert (
            sessions.sign_in(s, "ada@acme.com", PASSWORD) is not None
        )  # the trailing newline is not part of it
        roles = s.exec(
            select(Membership.tenant_id, Membership.role).order_by(col(Membership.tenant_id))
        ).all()
    assert sorted(roles) == [("acme", "admin"), ("acme", "approver"), ("beta", "approver")]
    assert [e.action for e in cli.events("beta")] == ["tenant.created", "user.role_granted"]

    out = cli.ok("user", "add", "ada@acme.com", "--tenant", "beta", "--role", "approver", "--new-password")
    fresh = out.strip().splitlines()[-1]
    assert "shown once" in out and fresh != PASSWORD
    with Session(cli.engine) as s:
        assert sessions.sign_in(s, "ada@acme.com", PASSWORD) is None
        assert sessions.sign_in(s, "ada@acme.com", fresh) is not None
    assert "user.password_set" in [e.action for e in cli.events("beta")]
    for tenant in ("acme", "beta"):
        _chain_ok(cli, tenant)
        _secrets_absent(cli, tenant, PASSWORD, fresh)


async def test_user_revoke_removes_roles_tokens_and_sessions_in_that_tenant_only(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin", "--role", "requester",
           "--password-stdin", stdin=PASSWORD)  # fmt: skip
    cli.ok("user", "add", "ada@acme.com", "--tenant", "beta", "--role", "admin")
    acme_token = cli.ok("token", "add", "ada@acme.com", "--tenant", "acme").strip().splitlines()[-1]
    beta_token = cli.ok("token", "add", "ada@acme.com", "--tenant", "beta").strip().splitlines()[-1]
    with Session(cli.engine) as s:
        signed = sessions.sign_in(s, "ada@acme.com", PASSWORD)
        assert signed is not None and signed[1].tenant_id == "acme"
    cookie = signed[0]

    out = cli.ok("user", "revoke", "ada@acme.com", "--tenant", "acme")
    assert "1 API token(s) and 1 web session(s) revoked" in out
    assert (await cli.get("/api/users", acme_token)).status_code == 401
    assert (await cli.get("/api/users", beta_token)).status_code == 200
    with Session(cli.engine) as s:
        assert sessions.lookup(s, cookie) is None
        assert s.exec(select(Membership).where(Membership.tenant_id == "acme")).all() == []
        again = sessions.sign_in(s, "ada@acme.com", PASSWORD)  # still a member of beta
        assert again is not None and again[1].tenant_id == "beta"
        assert not sessions.switch_tenant(s, again[1], "acme")
    removed = [e for e in cli.events("acme") if e.action == "user.removed"]
    assert len(removed) == 1 and json.loads(removed[0].data_json)["roles"] == ["admin", "requester"]
    code, _, err = cli("user", "revoke", "ada@acme.com", "--tenant", "acme")
    assert code == 2 and "not a member of tenant 'acme'" in err
    _chain_ok(cli, "acme")
    _secrets_absent(cli, "acme", PASSWORD, acme_token, beta_token)


async def test_tenant_revoke_stops_its_tokens_sessions_and_sign_ins(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    cli.ok("user", "add", "solo@acme.com", "--tenant", "acme", "--role", "requester", "--password-stdin",
           stdin=PASSWORD)  # fmt: skip
    cli.ok(
        "user",
        "add",
        "duo@acme.com",
        "--tenant",
        "acme",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD,
    )
    cli.ok("user", "add", "duo@acme.com", "--tenant", "beta", "--role", "admin")
    token = cli.ok("token", "add", "duo@acme.com", "--tenant", "acme").strip().splitlines()[-1]
    with Session(cli.engine) as s:
        signed = sessions.sign_in(s, "duo@acme.com", PASSWORD)
        assert signed is not None and signed[1].tenant_id == "acme"
    assert (await cli.get("/api/users", token)).status_code == 200

    assert "disabled" in cli.ok("tenant", "revoke", "acme")
    r = await cli.get("/api/users", token)
    assert r.status_code == 401 and "tenant is disabled" in r.text
    with Session(cli.engine) as s:
        assert sessions.lookup(s, signed[0]) is None
        assert sessions.sign_in(s, "solo@acme.com", PASSWORD) is None  # nowhere left to land
        other = sessions.sign_in(s, "duo@acme.com", PASSWORD)
        assert other is not None and other[1].tenant_id == "beta"  # never the disabled tenant
        assert [t.id for t in sessions.tenants_of(s, other[1].user_id)] == ["beta"]
        assert not sessions.switch_tenant(s, other[1], "acme")
        assert s.exec(select(WebSession).where(WebSession.tenant_id == "acme")).first() is not None

    assert "already disabled" in cli.ok("tenant", "revoke", "acme")
    tenants = {t["id"]: t for t in json.loads(cli.ok("tenant", "list", "--json"))}
    assert tenants["acme"]["disabled_at"] is not None and tenants["beta"]["disabled_at"] is None
    code, _, err = cli("token", "add", "duo@acme.com", "--tenant", "acme")
    assert code == 2 and "disabled" in err
    assert [e.action for e in cli.events("acme")].count("tenant.disabled") == 1
    _chain_ok(cli, "acme")


async def test_tenant_enable_brings_tokens_back_but_not_old_sessions(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("user", "add", "solo@acme.com", "--tenant", "acme", "--role", "admin", "--password-stdin",
           stdin=PASSWORD)  # fmt: skip
    token = cli.ok("token", "add", "solo@acme.com", "--tenant", "acme").strip().splitlines()[-1]
    with Session(cli.engine) as s:
        signed = sessions.sign_in(s, "solo@acme.com", PASSWORD)
        assert signed is not None
    assert "not disabled" in cli.ok("tenant", "enable", "acme")  # nothing to do, nothing audited
    cli.ok("tenant", "revoke", "acme")
    assert (await cli.get("/api/users", token)).status_code == 401

    out = cli.ok("tenant", "enable", "acme")
    assert "enabled" in out and "1 web session(s)" in out
    assert (await cli.get("/api/users", token)).status_code == 200
    with Session(cli.engine) as s:
        assert sessions.lookup(s, signed[0]) is None  # the session from before stays ended
        assert sessions.sign_in(s, "solo@acme.com", PASSWORD) is not None
    tenants = {t["id"]: t for t in json.loads(cli.ok("tenant", "list", "--json"))}
    assert tenants["acme"]["disabled_at"] is None
    assert [e.action for e in cli.events("acme")].count("tenant.enabled") == 1
    code, _, err = cli("tenant", "enable", "nobody")
    assert code == 2 and "nobody" in err
    _chain_ok(cli, "acme")


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["tenant", "add", "acme", "--name", "Again"], None, "already exists"),
        (["tenant", "add", "Big Co", "--name", "X"], None, "lower-case letters, digits and -"),
        (["tenant", "add", "a,b", "--name", "X"], None, "lower-case letters, digits and -"),
        (["tenant", "add", "all-tenants", "--name", "X"], None, "not allowed"),
        (["tenant", "add", "fresh", "--name", " "], None, "name of 1 to 200"),
        (["tenant", "revoke", "nope"], None, "No tenant 'nope'"),
        (["user", "add", "x@acme.com", "--tenant", "nope", "--role", "admin"], None, "No tenant 'nope'"),
        (["user", "add", "not-an-email", "--tenant", "acme", "--role", "admin"], None, "not an e-mail address"),
        (["user", "add", "x@acme.com", "--tenant", "acme", "--role", "boss"], None, "Unknown role 'boss'"),
        (["user", "add", "x@acme.com", "--tenant", "acme", "--role", "admin", "--password-stdin"], "", "no password"),
        (["user", "add", "x@acme.com", "--tenant", "acme", "--role", "admin", "--password-stdin"], "\n", "no password"),
        (["user", "add", "x@acme.com", "--tenant", "acme", "--role", "admin", "--password-stdin"], "short1\n",
         "at least 12 characters"),
        (["user", "list", "--tenant", "nope"], None, "No tenant 'nope'"),
        (["user", "revoke", "ghost@acme.com", "--tenant", "acme"], None, "not a member"),
        (["token", "add", "ghost@acme.com", "--tenant", "acme"], None, "not a member"),
        (["token", "add", "ada@acme.com", "--tenant", "beta"], None, "not a member of tenant 'beta'"),
        (["token", "list", "--tenant", "acme", "--email", "bad"], None, "not an e-mail address"),
        (["token", "revoke", "tok_nope", "--tenant", "acme"], None, "No token 'tok_nope'"),
    ],
)  # fmt: skip
def test_bad_input_says_what_to_do_exits_2_and_changes_nothing(
    cli: Cli, argv: list[str], stdin: str | None, message: str
) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    cli.ok("user", "add", "ada@acme.com", "--tenant", "acme", "--role", "admin")
    before = {t: len(cli.events(t)) for t in ("acme", "beta")}
    code, out, err = cli(*argv, stdin=stdin)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and message in err
    assert {t: len(cli.events(t)) for t in ("acme", "beta")} == before
    with Session(cli.engine) as s:
        assert s.exec(select(User).where(User.email == "x@acme.com")).first() is None


def test_a_token_of_another_tenant_cannot_be_revoked_through_this_one(cli: Cli) -> None:
    cli.ok("tenant", "add", "acme", "--name", "Acme")
    cli.ok("tenant", "add", "beta", "--name", "Beta")
    cli.ok("user", "add", "ada@acme.com", "--tenant", "beta", "--role", "admin")
    cli.ok("token", "add", "ada@acme.com", "--tenant", "beta")
    token_id = json.loads(cli.ok("token", "list", "--tenant", "beta", "--json"))[0]["id"]
    code, _, err = cli("token", "revoke", token_id, "--tenant", "acme")
    assert code == 2 and "No token" in err
    assert json.loads(cli.ok("token", "list", "--tenant", "beta", "--json"))[0]["revoked_at"] is None


def test_an_unmigrated_database_is_refused_with_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_database(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        for argv in (["tenant", "list"], ["tenant", "add", "acme", "--name", "Acme"]):
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 1 and out == ""
            assert (
                err.startswith("error: ")
                and "run `frontdesk migrate` first" in err
                and "Traceback" not in err
            )
    finally:
        get_settings.cache_clear()


def test_a_database_that_cannot_be_opened_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_database(monkeypatch, tmp_path, "nosuchdriver://somewhere/db")
    try:
        code = main(["tenant", "list"])
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        assert err.startswith("error: cannot use the database") and "Traceback" not in err
    finally:
        get_settings.cache_clear()


def test_argparse_refuses_missing_flags(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["user", "add", "ada@acme.com", "--tenant", "acme"])  # no --role
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "user",
                "add",
                "a@acme.com",
                "--tenant",
                "acme",
                "--role",
                "admin",
                "--password-stdin",
                "--new-password",
            ]
        )
    assert exited.value.code == 2


def test_the_actor_is_the_os_account_even_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.cli import accounts_cmd

    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    assert accounts_cmd.actor() == "cli:ops"

    def missing() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", missing)
    assert accounts_cmd.actor() == "cli:unknown"
