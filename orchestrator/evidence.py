"""A task's evidence bundle, and its check without the database (docs/evidence.md).

The bundle (`Bundle`, built by orchestrator.services.evidence) holds the request, the pinned
definition and its digest, every model call, tool call and checkpoint, and the task's audit events
with `prev_hash` and `hash`. `verify` recomputes, in this order, and names the first failure:

1. the definition's digest;
2. each audit event's hash, `sha256(prev_hash | canonical event)` as orchestrator.audit defines it;
3. the link to an anchor, when the bundle carries one: the task's events and the chain segment
   between them, contiguous in seq from the task's first event to the anchored head, each row's
   prev_hash its predecessor's hash, the last hash the anchor's (and the anchor's signature when a
   key is given: the HMAC key, or only the Ed25519 public key, orchestrator.anchor_keys);
4. the rows against the chained events: the workflow submitted, each model call's tier, cost and
   prompt digest, each tool call's arguments digest, policy version, rule and result digest, each
   checkpoint's arguments digest and every decision on it.

What the chain does not cover (a model call's tokens, latency, model served; the prompt digest of
a call audited before events carried it) is reported as it was recorded, and docs/evidence.md
says so. This module is pure: the workers import its digests, the CLI its check.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from orchestrator.anchor_keys import Keys, check_record
from orchestrator.audit import _digest
from orchestrator.models import AuditEvent

FORMAT = "frontdesk.evidence/1"


class _Message(Protocol):
    def to_openai(self) -> dict[str, Any]: ...


def canonical(value: Any) -> str:
    """The JSON every digest here is taken of: sorted keys, no spaces, ASCII (as args_digest)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def canonical_digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def prompt_digest(messages: Sequence[_Message]) -> str:
    """The digest of the messages as the router client sends them (their OpenAI form)."""
    return canonical_digest([m.to_openai() for m in messages])


# --- the bundle ------------------------------------------------------------------------------------


class RequestEvidence(BaseModel):
    task_id: str
    requester_id: str
    workflow: str  # name@version
    input: str
    data: dict[str, Any]
    budget_usd: str | None
    status: str
    outcome: str | None
    output_digest: str | None  # the output itself stays in the task (it may quote tool results)
    error: str | None
    created_at: str
    ended_at: str | None


class DefinitionEvidence(BaseModel):
    kind: str  # "workflow": the pinned recipe, with the agents and tools it names
    ref: str
    digest: str
    definition: Any


class ModelCallEvidence(BaseModel):
    id: str
    request_id: str
    activity_attempt: int
    attempt: int
    step: str
    agent: str
    turn: int
    tier: str
    model_served: str | None
    model_group: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: str
    cost_estimated: bool
    latency_ms: float
    ok: bool
    status: str
    prompt_digest: str | None
    created_at: str


class ToolCallEvidence(BaseModel):
    id: str
    step: str
    turn: int
    agent: str
    tool: str
    tool_version: str | None
    args: Any
    args_digest: str
    effect: str
    policy_version: str
    rule: str
    rule_id: str
    status: str
    result_digest: str | None
    error: str | None
    created_at: str


class DecisionEvidence(BaseModel):
    decider_id: str
    decision: str
    round: int
    comment: str | None
    edited_args: Any
    created_at: str


class CommentEvidence(BaseModel):
    author_id: str
    body: str
    created_at: str


class CheckpointEvidence(BaseModel):
    id: str
    kind: str
    step: str
    tool: str
    tool_call_id: str | None
    args: Any
    args_digest: str
    policy_version: str
    rule: str
    rule_id: str
    assignee_role: str
    extra_roles: list[str]
    named_approvers: list[str]
    approvers_required: int
    status: str
    decided_by: str | None
    decided_at: str | None
    edit_diff: Any
    decisions: list[DecisionEvidence]
    comments: list[CommentEvidence]
    created_at: str


class EventEvidence(BaseModel):
    """An audit row as its hash was computed: `at` is naive UTC, ISO with microseconds."""

    seq: int
    task_id: str | None
    actor: str
    action: str
    subject: str
    reason: str
    data: dict[str, Any]
    at: str
    prev_hash: str
    hash: str


class AuditEvidence(BaseModel):
    events: list[EventEvidence]  # the task's own, in seq order
    # The rows of other tasks (or none) between the task's first event and the anchored head, whole:
    # a hash link can only be recomputed from the row it covers. Empty when there is no anchor.
    segment: list[EventEvidence] = Field(default_factory=list)
    anchor: dict[str, Any] | None = None  # the signed head record, as in the anchor file
    anchor_note: str = ""  # why there is no anchor or segment, when there is none


class Bundle(BaseModel):
    format: str = FORMAT
    generated_at: str
    generated_by: str
    tenant_id: str
    request: RequestEvidence
    definitions: list[DefinitionEvidence]
    model_calls: list[ModelCallEvidence]
    tool_calls: list[ToolCallEvidence]
    checkpoints: list[CheckpointEvidence]
    audit: AuditEvidence


# --- the check -------------------------------------------------------------------------------------


class Broken(Exception):
    """The first thing in a bundle that does not check."""


class Verdict(BaseModel):
    ok: bool
    problem: str = ""
    checked: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def event_hash(tenant_id: str, e: EventEvidence) -> str:
    row = AuditEvent(
        tenant_id=tenant_id,
        seq=e.seq,
        task_id=e.task_id,
        actor=e.actor,
        action=e.action,
        subject=e.subject,
        reason=e.reason,
        data_json=json.dumps(e.data),
        at=datetime.fromisoformat(e.at),
        prev_hash=e.prev_hash,
        hash="",
    )
    return _digest(e.prev_hash, row)


def verify(raw: Any, anchor_key: bytes | Keys | None = None) -> Verdict:
    """Check a bundle (parsed JSON); the verdict names the first thing that does not check.
    `anchor_key`: the HMAC key (bytes), or Keys (an Ed25519 public key suffices)."""
    verdict = Verdict(ok=True)
    try:
        bundle = Bundle.model_validate(raw)
        if bundle.format != FORMAT:
            raise Broken(f"unknown bundle format {bundle.format!r} (expected {FORMAT})")
        _definitions(bundle, verdict)
        _events(bundle, verdict)
        _link(bundle, verdict, anchor_key)
        _rows(bundle, verdict)
    except ValidationError as exc:
        return Verdict(ok=False, problem=f"the bundle does not parse: {exc.errors()[0]}")
    except Broken as exc:
        verdict.ok, verdict.problem = False, str(exc)
    return verdict


def _definitions(bundle: Bundle, verdict: Verdict) -> None:
    for d in bundle.definitions:
        if canonical_digest(d.definition) != d.digest:
            raise Broken(f"definition {d.ref}: its content does not give its digest")
    verdict.checked.append(f"{len(bundle.definitions)} definition digest(s)")


def _events(bundle: Bundle, verdict: Verdict) -> None:
    seqs = [e.seq for e in bundle.audit.events]
    if seqs != sorted(set(seqs)):
        raise Broken("audit events are not in strictly increasing seq order")
    for e in bundle.audit.events:
        if e.task_id != bundle.request.task_id:
            raise Broken(f"audit event seq {e.seq} belongs to task {e.task_id}, not this one")
        if event_hash(bundle.tenant_id, e) != e.hash:
            raise Broken(f"audit event seq {e.seq} ({e.action}) does not match its hash")
    for before, after in pairwise(bundle.audit.events):
        if after.seq == before.seq + 1 and after.prev_hash != before.hash:
            raise Broken(f"audit event seq {after.seq}: prev_hash is not the hash of seq {before.seq}")
    verdict.checked.append(f"{len(bundle.audit.events)} audit event hash(es)")


def _link(bundle: Bundle, verdict: Verdict, key: bytes | Keys | None) -> None:
    a = bundle.audit
    if a.anchor is None:
        if a.segment:
            raise Broken("the bundle has a chain segment but no anchor to end it")
        verdict.notes.append(
            "NOT LINKED to an anchored head: "
            + (a.anchor_note or "the bundle carries no anchor")
            + "; each event's hash checks, but events could be missing or made up"
        )
        return
    anchor = a.anchor
    if anchor.get("tenant_id") != bundle.tenant_id or anchor.get("kind", "head") != "head":
        raise Broken("the anchor is not a head record of this tenant")
    own = {e.seq for e in a.events}
    for e in a.segment:
        if e.seq in own:
            raise Broken(f"seq {e.seq} is both a task event and a segment row")
        if e.task_id == bundle.request.task_id:
            raise Broken(f"segment row seq {e.seq} is an event of this task, not listed with its events")
        if event_hash(bundle.tenant_id, e) != e.hash:
            raise Broken(f"chain segment row seq {e.seq} does not match its hash")
    chain = sorted([*a.events, *a.segment], key=lambda e: e.seq)
    if not chain:
        raise Broken("an anchor without any event to link to it")
    for before, after in pairwise(chain):
        if after.seq != before.seq + 1:
            raise Broken(f"the chain to the anchor misses seq {before.seq + 1}..{after.seq - 1}")
        if after.prev_hash != before.hash:
            raise Broken(f"seq {after.seq}: prev_hash is not the hash of seq {before.seq}")
    last = chain[-1]
    if (last.seq, last.hash) != (anchor.get("seq"), anchor.get("hash")):
        raise Broken(
            f"the chain ends at seq {last.seq}, but the anchor is of seq {anchor.get('seq')} "
            "(or its hash differs)"
        )
    verdict.checked.append(
        f"the chain from seq {chain[0].seq} to the anchored head at seq {last.seq} "
        f"({len(a.segment)} row(s) of other tasks in between)"
    )
    keys = Keys.of(key)
    problem, signatures = check_record(anchor, keys) if keys.hmac or keys.public else ("", [])
    if problem:
        raise Broken(f"bad signature on the anchor of seq {anchor.get('seq')}: the record {problem}")
    if signatures:
        verdict.checked.append(f"the anchor's signature: {', '.join(signatures)}")
    else:
        verdict.notes.append(
            f"the anchor's signature (HMAC key {anchor.get('key_id')}, Ed25519 key "
            f"{anchor.get('ed25519_key_id')}) was not checked: no key given"
        )


def _money(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation as exc:
        raise Broken(f"{text!r} is not an amount") from exc


def _rows(bundle: Bundle, verdict: Verdict) -> None:
    """The rows against the events that vouch for them (the chain covers the events only)."""
    by_action: dict[str, list[EventEvidence]] = defaultdict(list)
    for e in bundle.audit.events:
        by_action[e.action].append(e)
    submitted = by_action.get("task.submitted", [])
    if not submitted or submitted[0].data.get("workflow") != bundle.request.workflow:
        raise Broken(f"no task.submitted event for workflow {bundle.request.workflow}")
    if bundle.request.workflow not in {d.ref for d in bundle.definitions}:
        raise Broken(f"the pinned definition {bundle.request.workflow} is not in the bundle")
    digests = _model_calls(bundle, by_action)
    _tool_calls(bundle, by_action)
    _checkpoints(bundle, by_action)
    verdict.checked.append(
        f"{len(bundle.model_calls)} model call(s) ({digests} prompt digest(s)), {len(bundle.tool_calls)} "
        f"tool call(s) and {len(bundle.checkpoints)} checkpoint(s) against their audit events"
    )
    unchained = sum(1 for m in bundle.model_calls if m.prompt_digest) - digests
    verdict.notes.append(
        f"as recorded, not chained: tokens, latency, model served and {unchained} prompt digest(s)"
    )


def _model_calls(bundle: Bundle, by_action: dict[str, list[EventEvidence]]) -> int:
    """Check the rows against their events; return how many prompt digests the events vouch for
    (events written before they carried `prompt_digests` vouch for none)."""
    groups: dict[str, dict[int, list[ModelCallEvidence]]] = defaultdict(lambda: defaultdict(list))
    for m in bundle.model_calls:
        groups[m.request_id][m.activity_attempt].append(m)
    vouched: set[tuple[str, int]] = set()
    digests = 0
    for e in [*by_action.get("model.call", []), *by_action.get("model.call_failed", [])]:
        attempts = groups.get(e.subject, {})
        cost = _money(e.data.get("cost_usd", "0"))
        match = [
            a for a, rows in attempts.items() if sum((_money(r.cost_usd) for r in rows), Decimal(0)) == cost
        ]
        if not match:
            raise Broken(
                f"model call {e.subject}: no attempt's rows add up to the {cost} USD "
                f"its audit event (seq {e.seq}) records"
            )
        rows = attempts[match[0]]
        if any(r.tier != e.data.get("tier") for r in rows):
            raise Broken(f"model call {e.subject}: a row's tier is not the {e.data.get('tier')} audited")
        if "prompt_digests" in e.data:
            if any(r.prompt_digest not in e.data["prompt_digests"] for r in rows):
                raise Broken(
                    f"model call {e.subject}: a row's prompt digest is not one its audit event (seq {e.seq}) records"
                )
            digests += sum(1 for r in rows if r.prompt_digest)
        vouched.add((e.subject, match[0]))
    for m in bundle.model_calls:
        if (m.request_id, m.activity_attempt) not in vouched and m.status == "done":
            raise Broken(f"model call row {m.id} ({m.request_id}) has no audit event")
    return digests


def _tool_calls(bundle: Bundle, by_action: dict[str, list[EventEvidence]]) -> None:
    decided = {"tool.allowed": "allow", "tool.approval_required": "approve", "tool.denied": "deny"}
    digests: dict[str, set[str]] = defaultdict(set)
    auth: dict[str, EventEvidence] = {}
    for action in decided:
        for e in by_action.get(action, []):
            auth[e.subject.split(":", 1)[-1]] = e
    cps = {c.id: c.tool_call_id for c in bundle.checkpoints}
    for action in ("checkpoint.opened", "checkpoint.decided", "checkpoint.approval_added"):
        for e in by_action.get(action, []):
            if cps.get(e.subject) and e.data.get("args_digest"):
                digests[str(cps[e.subject])].add(str(e.data["args_digest"]))
    ran = {e.subject: e for a in ("tool.ran", "tool.failed") for e in by_action.get(a, [])}
    for t in bundle.tool_calls:
        recomputed = (
            hashlib.sha256(t.args.encode()).hexdigest()
            if isinstance(t.args, str)
            else canonical_digest(t.args)
        )
        if recomputed != t.args_digest:
            raise Broken(f"tool call {t.id}: its arguments do not give its args_digest")
        found = auth.get(t.id)
        if found is None:
            raise Broken(f"tool call {t.id} ({t.tool}) has no authorization event")
        e = found
        if t.args_digest not in {e.data.get("args_digest"), *digests[t.id]}:
            raise Broken(f"tool call {t.id}: args_digest differs from its audit events (seq {e.seq})")
        if (t.effect, t.policy_version, t.rule, t.rule_id) != (
            decided[e.action],
            e.data.get("policy_version"),
            e.data.get("rule"),
            e.data.get("rule_id"),
        ):
            raise Broken(f"tool call {t.id}: decision, policy version or rule differ from event seq {e.seq}")
        done = ran.get(t.id)
        if (
            done is not None
            and "result_digest" in done.data
            and done.data["result_digest"] != t.result_digest
        ):
            raise Broken(f"tool call {t.id}: result_digest differs from its audit event (seq {done.seq})")


def _checkpoints(bundle: Bundle, by_action: dict[str, list[EventEvidence]]) -> None:
    opened = {e.subject: e for e in by_action.get("checkpoint.opened", [])}
    decisions: dict[str, list[EventEvidence]] = defaultdict(list)
    for action in ("checkpoint.decided", "checkpoint.approval_added"):
        for e in by_action.get(action, []):
            decisions[e.subject].append(e)
    for c in bundle.checkpoints:
        first = opened.get(c.id)
        if first is None:
            raise Broken(f"checkpoint {c.id} has no checkpoint.opened event")
        e = first
        if c.policy_version != e.data.get("policy_version"):
            raise Broken(f"checkpoint {c.id}: policy version differs from event seq {e.seq}")
        if c.args_digest not in {
            e.data.get("args_digest"),
            *(d.data.get("args_digest") for d in decisions[c.id]),
        }:
            raise Broken(f"checkpoint {c.id}: args_digest differs from its audit events")
        for d in c.decisions:
            actor = "system" if d.decider_id == "system" else f"user:{d.decider_id}"
            if not any(
                (x.actor, x.data.get("decision"), x.data.get("round"), x.reason)
                == (actor, d.decision, d.round, d.comment or d.decision)
                for x in decisions[c.id]
            ):
                raise Broken(f"checkpoint {c.id}: {d.decision} by {d.decider_id} has no audit event")
        said = [(x.actor, x.reason) for x in by_action.get("checkpoint.commented", []) if x.subject == c.id]
        for m in c.comments:
            if (f"user:{m.author_id}", m.body[:200]) not in said:
                raise Broken(f"checkpoint {c.id}: a comment by {m.author_id} has no audit event (or differs)")
        if c.edit_diff is not None and not any(
            x.data.get("edit_diff") == c.edit_diff for x in decisions[c.id]
        ):
            raise Broken(f"checkpoint {c.id}: the edit diff differs from its audit events")
