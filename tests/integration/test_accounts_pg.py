"""`frontdesk tenant|user|token` on the shared test databases, PostgreSQL and SQLite alike.

The CLI opens its own engine from FRONTDESK_DATABASE_URL; the API app and the checks use the
fixture's engine, so what the command wrote is read back over a separate connection. Each test
bootstraps its own tenant, so the seeded tenants are untouched.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from orchestrator import audit
from orchestrator.app import build_state, create_app
from orchestrator.cli.main import main
from orchestrator.models import ApiToken, AuditEvent, User
from orchestrator.settings import Settings, get_settings
from orchestrator.web import sessions

BOTH = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
PASSWORD = "a long enough pass phrase"


@pytest.fixture
def frontdesk(
    db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """`frontdesk(*argv, stdin=None) -> (exit code, stdout, stderr)` against the test database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", db.url)
    monkeypatch.setenv("FRONTDESK_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("getpass.getuser", lambda: "pgops")
    get_settings.cache_clear()

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    yield run
    get_settings.cache_clear()


async def _status(db: Any, tmp_path: Path, token: str) -> int:
    settings = Settings(_env_file=None, database_url=db.url, state_dir=tmp_path)
    app = create_app(settings, state=build_state(settings, engine=db.engine))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://frontdesk") as http:
        r = await http.get("/api/users", headers={"Authorization": f"Bearer {token}"})
    return r.status_code


@BOTH
async def test_bootstrap_revoke_and_audit_on_the_real_database(
    db: Any, frontdesk: Any, tmp_path: Path
) -> None:
    tenant = f"boot{secrets.token_hex(4)}"
    admin, member = f"admin@{tenant}.example", f"member@{tenant}.example"
    assert frontdesk("tenant", "add", tenant, "--name", "Bootstrap test")[0] == 0

    code, out, err = frontdesk("user", "add", admin, "--tenant", tenant, "--role", "admin")
    assert code == 0, err
    password = out.strip().splitlines()[-1]
    code, out, err = frontdesk("user", "add", member, "--tenant", tenant, "--role", "requester",
                               "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0 and PASSWORD not in out, err
    code, out, err = frontdesk("token", "add", admin, "--tenant", tenant, "--label", "bootstrap")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    code, out, _ = frontdesk("token", "add", admin, "--tenant", tenant)
    spare = out.strip().splitlines()[-1]

    assert await _status(db, tmp_path, token) == 200
    with Session(db.engine) as s:
        assert sessions.sign_in(s, admin, password) is not None
        signed = sessions.sign_in(s, member, PASSWORD)
        assert signed is not None and signed[1].tenant_id == tenant

    listed = json.loads(frontdesk("token", "list", "--tenant", tenant, "--json")[1])
    assert [t["label"] for t in listed] == ["bootstrap", ""]
    assert frontdesk("token", "revoke", listed[0]["id"], "--tenant", tenant)[0] == 0
    assert await _status(db, tmp_path, token) == 401
    assert await _status(db, tmp_path, spare) == 200

    code, _, err = frontdesk("tenant", "add", tenant, "--name", "again")
    assert code == 2 and "already exists" in err
    assert frontdesk("tenant", "revoke", tenant)[0] == 0
    assert await _status(db, tmp_path, spare) == 401
    with Session(db.engine) as s:
        assert sessions.lookup(s, signed[0]) is None
        assert sessions.sign_in(s, member, PASSWORD) is None

    with Session(db.engine) as s:
        ok, why = audit.verify_chain(s, tenant)
        events = s.exec(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant).order_by(col(AuditEvent.seq))
        ).all()
        hashes = [
            u.password_hash or "" for u in s.exec(select(User).where(col(User.email).in_([admin, member])))
        ]
        hashes += [t.token_hash for t in s.exec(select(ApiToken).where(ApiToken.tenant_id == tenant))]
    assert ok, why
    assert [e.action for e in events] == [
        "tenant.created",
        "user.created", "user.role_granted",
        "user.created", "user.role_granted",
        "token.created", "token.created",
        "web.signed_in", "web.signed_in",
        "token.revoked",
        "tenant.disabled",
    ]  # fmt: skip
    assert {e.actor for e in events if not e.action.startswith("web.")} == {"cli:pgops"}
    rows = " ".join(f"{e.subject} {e.reason} {e.data_json}" for e in events)
    for secret in [password, PASSWORD, token, spare, *hashes]:
        assert secret and secret not in rows
