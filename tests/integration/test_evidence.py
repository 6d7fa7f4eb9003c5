"""GET /api/tasks/{id}/evidence and `frontdesk audit verify-bundle`, on SQLite and PostgreSQL.

A refund through the real stack (API, Temporal, worker, LiteLLM, demo model) approved with an
edit, its chain anchored (HMAC and Ed25519); the bundle checks offline, with the HMAC key or only
the Ed25519 public key, and each kind of tampering with it is named.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROUTER_KEY, SeededDb, Stack, running_stack
from temporalio.testing import WorkflowEnvironment

from orchestrator import anchor_keys, audit_anchor
from orchestrator.cli.main import main
from orchestrator.db import session_scope
from orchestrator.demo.seed import ensure_token, ensure_user
from orchestrator.evidence import EventEvidence, event_hash

KEY = "evidence-anchor-key-" + secrets.token_hex(16)


@pytest.fixture
async def anchored(
    db: SeededDb, temporal_env: WorkflowEnvironment, router_url: str, demo_model_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The stack with anchoring configured (the periodic loop off: the test anchors when it wants)."""
    async with running_stack(
        db,
        temporal_env.client,
        router_url,
        demo_model_url,
        tmp_path,
        audit_anchor_file=str(tmp_path / "anchors.jsonl"),
        audit_anchor_key=KEY,
        audit_anchor_signing_key_file=str(signing_key(tmp_path)),
        audit_anchor_interval_seconds=0,
    ) as stack:
        yield stack


def signing_key(tmp_path: Path) -> Path:
    path = tmp_path / "anchor-signing.pem"
    if not path.exists():
        anchor_keys.write_private_key(path)
    return path


def auditor_token(db: SeededDb) -> str:
    with session_scope(db.engine) as session:
        user = ensure_user(session, "acme", "olive-auditor@acme.example", "Olive Auditor", ["auditor"])
        return ensure_token(session, user, "acme")


async def approved_refund(stack: Stack) -> dict[str, Any]:
    order = stack.make_order("300")
    task = await stack.submit(f"Refund 300 EUR on order {order}, the item was damaged.")
    cp = await stack.open_checkpoint(task["id"])
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/comments",
        json={"body": "the photo shows the damage"},
        headers=stack.auth("avery"),
    )
    assert r.status_code in (200, 201), r.text
    r = await stack.api.post(
        f"/api/checkpoints/{cp['id']}/decision",
        json={
            "decision": "approve_with_edits",
            "edited_args": {**cp["args"], "amount": "250.00"},
            "comment": "partial",
        },
        headers=stack.auth("avery"),
    )
    assert r.status_code == 200, r.text
    done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
    assert done["status"] == "completed", done["error"]
    return done


def check(tmp_path: Path, bundle: dict[str, Any], capsys: Any, *extra: str) -> tuple[int, str]:
    path = tmp_path / f"bundle-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(bundle))
    code = main(["audit", "verify-bundle", str(path), *extra])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_a_bundle_checks_offline_and_each_tampering_is_named(
    anchored: Stack, db: SeededDb, tmp_path: Path, capsys: Any
) -> None:
    stack = anchored
    done = await approved_refund(stack)
    where = audit_anchor.configured(stack.settings)
    assert where is not None and where[1].hmac and where[1].signer
    written = audit_anchor.Anchorer(db.engine, *where).run("acme")
    assert [r.written for r in written] == [True], written
    auditor = {"Authorization": f"Bearer {auditor_token(db)}"}

    r = await stack.api.get(f"/api/tasks/{done['id']}/evidence", headers=auditor)
    assert r.status_code == 200, r.text
    bundle = r.json()
    text = r.text
    # What it holds: the request, the pinned definition, every call with its digests.
    assert bundle["request"]["task_id"] == done["id"] and bundle["request"]["workflow"] == "refund_request@1"
    assert [d["ref"] for d in bundle["definitions"]] == ["refund_request@1"]
    calls = bundle["model_calls"]
    assert len(calls) == len(done["model_calls"]) >= 3
    assert all(len(c["prompt_digest"]) == 64 and c["model_served"] and c["tier"] for c in calls)
    assert len({c["prompt_digest"] for c in calls}) == len(calls)  # each turn sent more messages
    tools = {t["tool"]: t for t in bundle["tool_calls"]}
    assert tools["issue_refund"]["args"]["amount"] == "250.00"
    assert all(len(t["result_digest"]) == 64 for t in tools.values())
    (cp,) = bundle["checkpoints"]
    assert cp["edit_diff"] == {"amount": {"from": "300.00", "to": "250.00"}}
    assert [(d["decision"], d["comment"]) for d in cp["decisions"]] == [("approve_with_edits", "partial")]
    assert cp["assignee_role"] == "approver" and cp["decided_by"] == db.user_ids["avery"]
    assert [c["body"] for c in cp["comments"]] == ["the photo shows the damage"]
    events = bundle["audit"]["events"]
    assert events[0]["action"] == "task.submitted" and all(len(e["hash"]) == 64 for e in events)
    anchor = bundle["audit"]["anchor"]
    assert anchor["seq"] >= events[-1]["seq"] and anchor["sig"] and anchor["ed25519_sig"]
    # The chain vouches for each call's prompt digest: its model.call event carries it.
    audited = {e["subject"]: e["data"] for e in events if e["action"] == "model.call"}
    assert all(c["prompt_digest"] in audited[c["request_id"]]["prompt_digests"] for c in calls)
    # No credentials: tokens, the router key, the anchor keys (HMAC, the Ed25519 private key).
    private = signing_key(tmp_path).read_text()
    for secret in [ROUTER_KEY, KEY, *db.tokens.values(), private, private.splitlines()[1]]:
        assert secret not in text

    key_file = tmp_path / "anchor.key"
    key_file.write_text(KEY)
    code, out = check(tmp_path, bundle, capsys, "--anchor-key-file", str(key_file), "--require-anchor")
    assert code == 0, out
    assert "the anchor's signature: HMAC" in out and "anchored head" in out
    assert f"({len(calls)} prompt digest(s))" in out and "and 0 prompt digest(s)" in out, out
    code, out = check(tmp_path, bundle, capsys)  # without the key: checks, and says what it did not
    assert code == 0 and "was not checked: no key given" in out, out

    # A third party with only the published public key (the value, or a file of it, base64 or PEM).
    public = anchor_keys.load_private_key(signing_key(tmp_path)).public_key()
    published = anchor_keys.public_text(public)
    pem_file = tmp_path / "anchor-public.pem"
    pem = anchor_keys.serialization
    pem_file.write_bytes(public.public_bytes(pem.Encoding.PEM, pem.PublicFormat.SubjectPublicKeyInfo))
    for given in (published, str(pem_file)):
        code, out = check(tmp_path, bundle, capsys, "--anchor-public-key", given, "--require-anchor")
        assert code == 0 and f"the anchor's signature: Ed25519 (key {anchor['ed25519_key_id']})" in out, out
    stranger = anchor_keys.public_text(anchor_keys.Ed25519PrivateKey.generate().public_key())
    code, out = check(tmp_path, bundle, capsys, "--anchor-public-key", stranger)
    assert code == 1 and "signed with another Ed25519 key" in out.splitlines()[-1], out
    re_signed = copy.deepcopy(bundle)  # the same head, signed by someone else's key
    someone_else = anchor_keys.Keys(signer=anchor_keys.Ed25519PrivateKey.generate())
    re_signed["audit"]["anchor"] = json.loads(
        audit_anchor.sign(someone_else, "acme", anchor["seq"], anchor["hash"])
    )
    code, out = check(tmp_path, re_signed, capsys, "--anchor-public-key", published)
    assert code == 1 and "signed with another Ed25519 key" in out.splitlines()[-1], out
    private_file = str(signing_key(tmp_path))
    code, out = check(tmp_path, bundle, capsys, "--anchor-public-key", private_file)
    assert code == 2  # a private key is refused, not used

    # A bundle from before model.call events carried the digest: it verifies, the digests unvouched.
    old = copy.deepcopy(bundle)
    old["audit"]["anchor"], old["audit"]["segment"] = None, []
    previous: dict[str, Any] | None = None
    for e in old["audit"]["events"]:
        e["data"].pop("prompt_digests", None)
        if previous is not None and e["seq"] == previous["seq"] + 1:
            e["prev_hash"] = previous["hash"]
        e["hash"] = event_hash("acme", EventEvidence.model_validate(e))
        previous = e
    code, out = check(tmp_path, old, capsys)
    assert code == 0 and "(0 prompt digest(s))" in out and f"and {len(calls)} prompt digest(s)" in out, out

    def tampered(change: Any) -> str:
        copied = copy.deepcopy(bundle)
        change(copied)
        code, out = check(tmp_path, copied, capsys, "--anchor-key-file", str(key_file))
        assert code == 1, out
        return out.splitlines()[-1]

    submitted = events[0]["seq"]

    def edit_event(b: dict[str, Any]) -> None:
        b["audit"]["events"][0]["reason"] = "someone else asked"

    assert f"audit event seq {submitted} (task.submitted) does not match its hash" in tampered(edit_event)

    def edit_cost(b: dict[str, Any]) -> None:
        b["model_calls"][0]["cost_usd"] = "0.000001"

    assert f"model call {calls[0]['request_id']}: no attempt's rows add up" in tampered(edit_cost)

    def edit_prompt_digest(b: dict[str, Any]) -> None:
        b["model_calls"][0]["prompt_digest"] = "0" * 64

    named = tampered(edit_prompt_digest)
    assert f"model call {calls[0]['request_id']}: a row's prompt digest is not one its audit event" in named

    def edit_args_digest(b: dict[str, Any]) -> None:
        b["tool_calls"][-1]["args_digest"] = "0" * 64

    assert "arguments do not give its args_digest" in tampered(edit_args_digest)

    def edit_args_and_digest(b: dict[str, Any]) -> None:  # consistent with itself, not with the chain
        from orchestrator.evidence import canonical_digest

        t = next(t for t in b["tool_calls"] if t["tool"] == "issue_refund")
        t["args"]["amount"] = "2500.00"
        t["args_digest"] = canonical_digest(t["args"])

    assert "args_digest differs from its audit events" in tampered(edit_args_and_digest)

    dropped = events[len(events) // 2]["seq"]

    def drop_event(b: dict[str, Any]) -> None:
        b["audit"]["events"] = [e for e in b["audit"]["events"] if e["seq"] != dropped]

    assert f"misses seq {dropped}..{dropped}" in tampered(drop_event)

    def edit_definition(b: dict[str, Any]) -> None:
        b["definitions"][0]["definition"]["default_budget_usd"] = "1000"

    assert "definition refund_request@1: its content does not give its digest" in tampered(edit_definition)

    def edit_decision(b: dict[str, Any]) -> None:
        b["checkpoints"][0]["decisions"][0]["decider_id"] = db.user_ids["ada"]

    assert "has no audit event" in tampered(edit_decision)

    def edit_decision_comment(b: dict[str, Any]) -> None:
        b["checkpoints"][0]["decisions"][0]["comment"] = "full refund"

    assert "approve_with_edits by" in tampered(edit_decision_comment)

    def edit_comment(b: dict[str, Any]) -> None:
        b["checkpoints"][0]["comments"][0]["body"] = "no photo"

    assert f"a comment by {db.user_ids['avery']} has no audit event" in tampered(edit_comment)

    def forge_anchor(b: dict[str, Any]) -> None:
        forged = json.loads(audit_anchor.sign(b"another-key-0000000", "acme", 1, "f" * 64))
        b["audit"]["anchor"] = {
            **forged,
            "seq": b["audit"]["anchor"]["seq"],
            "hash": b["audit"]["anchor"]["hash"],
        }

    assert "bad signature" in tampered(forge_anchor)


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
async def test_who_may_read_a_bundle(anchored: Stack, db: SeededDb, tmp_path: Path, capsys: Any) -> None:
    stack = anchored
    done = await approved_refund(stack)
    audit_anchor.Anchorer(db.engine, str(tmp_path / "anchors.jsonl"), KEY.encode()).run("acme")
    url = f"/api/tasks/{done['id']}/evidence"
    # The requester and an approver read it, without the other tasks' rows of the chain.
    for who in ("riley", "avery"):
        r = await stack.api.get(url, headers=stack.auth(who))
        assert r.status_code == 200, r.text
        audit = r.json()["audit"]
        assert (
            audit["anchor"] is None and audit["segment"] == [] and "admins, auditors" in audit["anchor_note"]
        )
        code, out = check(tmp_path, r.json(), capsys)
        assert code == 0 and "NOT LINKED" in out, out
        code, out = check(tmp_path, r.json(), capsys, "--require-anchor")
        assert code == 1, out
    # An admin gets the link; someone of the tenant who may not read the task, and another tenant, a 404.
    assert (await stack.api.get(url, headers=stack.auth("ada"))).json()["audit"]["anchor"] is not None
    for who in ("dev", "gina"):
        r = await stack.api.get(url, headers=stack.auth(who))
        assert r.status_code == 404, (who, r.text)
    assert (await stack.api.get(url)).status_code == 401
