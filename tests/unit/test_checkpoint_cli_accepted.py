"""`frontdesk checkpoint approve|reassign` print a 202 (accepted by the task, not recorded yet
because the database is down) as such, not as a decided checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from orchestrator.cli import api_client, checkpoint_cmd
from orchestrator.settings import Settings

DETAIL = "Your request is accepted by the task and will be recorded as soon as the database is reachable again."


def accepted(request: httpx.Request) -> httpx.Response:
    body = {"status": "accepted", "checkpoint_id": "cp_1", "detail": DETAIL, "retry_after": 30}
    return httpx.Response(202, json=body, headers={"Retry-After": "30", "Location": "/api/checkpoints/cp_1"})


@pytest.mark.parametrize("argv", [["approve", "cp_1"], ["reassign", "cp_1", "--role", "admin"]])
def test_a_202_says_accepted_not_recorded(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(_env_file=None, state_dir=tmp_path)
    monkeypatch.setattr(api_client, "get_settings", lambda: settings)
    monkeypatch.setattr(
        api_client,
        "build_client",
        lambda url, token: api_client.ApiClient(url, token, transport=httpx.MockTransport(accepted)),
    )
    parser = argparse.ArgumentParser(prog="frontdesk")
    checkpoint_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["checkpoint", *argv, "--token", "t0ken"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("accepted, not recorded yet: ") and DETAIL in out
    assert "approved" not in out and "reassigned" not in out
