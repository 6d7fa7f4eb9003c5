"""Figure 1: task list / task detail latency with a big task table in PostgreSQL.

A database of our own on the shared server is migrated and seeded with the demo tenant (its
users and API tokens), then filled by bulk SQL (no workflows) with `--tasks` refund tasks and the
rows a refund task leaves behind: one step, three model calls, two tool calls, an approval
checkpoint for most of them and its audit events. Four tenants; most tasks (80 %) in `acme`,
whose readers the bench plays. Then Frontdesk's API runs alone against it (no Temporal, router or
worker: reads need none) and `--readers` concurrent httpx clients, each with its own connection
and an API token, read:

- `list first page`   GET /api/tasks                      (newest 50)
- `list deep page (offset)`  GET /api/tasks?offset=N      (N random, deep in the tenant's tasks)
- `list deep page (before)`  GET /api/tasks?before=ID     (keyset: the page after a random task;
                                                         code before 0009 ignores `before`)
- `list by status`    GET /api/tasks?status=failed        (a filter, newest 50)
- `detail`            GET /api/tasks/{id}                 (a random task of the tenant)

Readers: 70 % approvers/admins (they see the whole tenant), 30 % the requester (her own tasks).

Three passes. `serial` (one approver reading alone, back to back) gives each route's own cost on
an idle API. `paced` (each reader sends a request, then waits `--think` seconds +- 50 %: people
reading the UI, about readers/think requests per second in all) gives the figure; `saturated`
(no think time: every reader sends its next request as soon as the last one answered) is printed
beside it, as the most one API process serves on this machine and the latency it costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.big.common import REPO, Database, summary_ms
from orchestrator.catalog.loader import load_catalog
from orchestrator.demo import seed
from orchestrator.demo.devstack.processes import ManagedProcess, free_port
from orchestrator.demo.devstack.supervisor import DevStack
from orchestrator.settings import Settings
from reliability.stack import rss_mb

ROUTES = ("list first page", "list deep page (offset)", "list deep page (before)", "list by status", "detail")
TENANTS = ("acme", "acme-eu", "bench-t3", "bench-t4")
AUDIT_PER_TASK = 12  # a refund with one approval writes about this many (see the audit figure)


def _seed_sql(n: int) -> list[tuple[str, dict[str, Any]]]:
    """Bulk INSERT ... SELECT statements: g = 1 is the newest task, one a minute back from now."""
    tenant = (
        "(CASE WHEN mod(g, 20) < 16 THEN 'acme' WHEN mod(g, 20) < 18 THEN 'acme-eu' "
        "WHEN mod(g, 20) = 18 THEN 'bench-t3' ELSE 'bench-t4' END)"
    )
    requester = (
        "(CASE WHEN mod(g, 20) < 16 AND mod(g, 8) = 0 THEN %(riley)s "
        f"ELSE 'usr_big_' || {tenant} || '_' || (mod(g, 6)) END)"
    )
    status = (
        "(CASE WHEN g <= 40 THEN 'waiting' WHEN g <= 60 THEN 'running' WHEN mod(g, 25) = 2 THEN 'failed' "
        "WHEN mod(g, 25) = 3 THEN 'rejected' WHEN mod(g, 50) = 7 THEN 'cancelled' ELSE 'completed' END)"
    )
    tid = "'tsk_' || substr(md5('t' || g), 1, 20)"
    created = "(now() - make_interval(secs => g * 60 + mod((g * 7919), 50)))"
    p = {"n": n}
    stmts: list[tuple[str, dict[str, Any]]] = []
    stmts.append((
        f"""INSERT INTO task (id, tenant_id, requester_id, workflow_name, workflow_version, input_text,
              input_json, definition_json, idempotency_key, status, outcome, output_json, error,
              created_at, updated_at, ended_at, budget_usd)
            SELECT {tid}, {tenant}, {requester}, 'refund_request', '1',
              'Order ORD-' || lpad(g::text, 8, '0') || ': refund 150 EUR, the parcel was lost.',
              '{{}}', %(definition)s, NULL, {status},
              CASE WHEN {status} = 'completed' THEN 'approved' ELSE NULL END,
              CASE WHEN {status} = 'completed' THEN %(output)s ELSE NULL END,
              CASE WHEN {status} = 'failed' THEN 'the model did not answer in time' ELSE NULL END,
              {created}, {created} + interval '9 seconds',
              CASE WHEN {status} IN ('waiting', 'running') THEN NULL ELSE {created} + interval '9 seconds' END,
              1.000000000
            FROM generate_series(1, %(n)s) g""",
        p,
    ))  # fmt: skip
    # The rows a task leaves behind, joined back to their task.
    base = f"FROM (SELECT g, {tid} AS tid, {tenant} AS ten, {created} AS at, {status} AS st FROM generate_series(1, %(n)s) g) t"
    stmts.append((
        f"""INSERT INTO task_step (tenant_id, task_id, index, name, agent, kind, rung, tier, status,
              output_json, started_at, ended_at)
            SELECT ten, tid, 0, 'handle_refund', 'refund_agent@1', 'agent', 0, 'tier-frontier',
              CASE WHEN st IN ('waiting', 'running') THEN 'running' ELSE st END,
              CASE WHEN st = 'completed' THEN %(output)s ELSE NULL END, at, at + interval '9 seconds' {base}""",
        p,
    ))  # fmt: skip
    stmts.append((
        f"""INSERT INTO model_call (id, tenant_id, task_id, step, agent, turn, request_id, activity_attempt,
              attempt, tier, model_served, model_group, fallbacks, prompt_tokens, completion_tokens,
              cached_tokens, cost_usd, cost_estimated, latency_ms, http_status, ok, response_json,
              status, created_at)
            SELECT 'mc_' || substr(md5('m' || g || ':' || k), 1, 20), ten, tid, 'handle_refund',
              'refund_agent@1', k, tid || ':handle_refund:' || k, 1, 1, 'tier-frontier',
              'demo-frontier', 'tier-frontier', 0, 900 + 150 * k, 60, 0, 0.002100000, false, 38.5, 200,
              true, %(response)s, 'done', at + make_interval(secs => k * 2)
            {base} CROSS JOIN generate_series(1, 3) k""",
        {**p, "response": _response()},
    ))  # fmt: skip
    stmts.append((
        f"""INSERT INTO tool_call (id, tenant_id, task_id, step, turn, agent, tool, tool_version,
              model_tool_call_id, args_json, args_digest, effect, policy_version, rule, rule_id, reason,
              status, result_json, idempotency_key, created_at, updated_at)
            SELECT 'tc_' || substr(md5('c' || g || ':' || k), 1, 24), ten, tid, 'handle_refund', k,
              'refund_agent@1', CASE k WHEN 1 THEN 'lookup_order' ELSE 'issue_refund' END, '1',
              'call_' || k, '{{"order_id": "ORD-' || lpad(g::text, 8, '0') || '", "amount": 150}}',
              md5('a' || g || k) || md5('b' || g || k), CASE k WHEN 1 THEN 'allow' ELSE 'approve' END,
              'pv-bench', 'refunds 100..500 EUR need one approver', 'refund-approval',
              'policy', CASE WHEN k = 2 AND st IN ('waiting', 'running') THEN 'awaiting_approval' ELSE 'done' END,
              '{{"ok": true}}', tid || ':' || k, at + make_interval(secs => k * 2),
              at + make_interval(secs => k * 2 + 1)
            {base} CROSS JOIN generate_series(1, 2) k""",
        p,
    ))  # fmt: skip
    stmts.append((
        f"""INSERT INTO checkpoint (id, tenant_id, task_id, tool_call_id, requester_id, step, kind, tool,
              args_json, args_digest, policy_version, rule, assignee_role, status, decided_by,
              decided_at, created_at, extra_roles, named_approvers, approvers_required, rule_id,
              sla_json, escalation_level, reason)
            SELECT 'cp_' || substr(md5('p' || g), 1, 24), ten, tid, 'tc_' || substr(md5('c' || g || ':2'), 1, 24),
              'usr_x', 'handle_refund', 'tool_approval', 'issue_refund', '{{"amount": 150}}',
              md5('d' || g), 'pv-bench', 'refunds 100..500 EUR need one approver', 'approver',
              CASE WHEN st = 'waiting' THEN 'open' WHEN st = 'rejected' THEN 'rejected' ELSE 'approved' END,
              CASE WHEN st = 'waiting' THEN NULL ELSE 'usr_approver' END,
              CASE WHEN st = 'waiting' THEN NULL ELSE at + interval '6 seconds' END,
              at + interval '4 seconds', '', '', 1, 'refund-approval', '[]', 0, 'refund needs approval'
            {base} WHERE mod(g, 5) < 4""",
        p,
    ))  # fmt: skip
    stmts.append((
        f"""INSERT INTO audit_event (tenant_id, seq, task_id, actor, action, subject, reason, data_json, at,
              prev_hash, hash)
            SELECT ten, row_number() OVER (PARTITION BY ten ORDER BY at DESC, k)
                + coalesce((SELECT h.seq FROM audit_head h WHERE h.tenant_id = ten), 0), tid, 'worker',
              (ARRAY['task.submitted', 'task.started', 'step.started', 'model.call', 'tool.decided',
                     'tool.called', 'model.call', 'checkpoint.opened', 'checkpoint.decided',
                     'tool.called', 'model.call', 'task.ended'])[k],
              tid, '', '{{"bench": true}}', at + make_interval(secs => k),
              md5('h' || g || ':' || (k - 1)) || md5('i' || g || ':' || (k - 1)),
              md5('h' || g || ':' || k) || md5('i' || g || ':' || k)
            {base} CROSS JOIN generate_series(1, {AUDIT_PER_TASK}) k""",
        p,
    ))  # fmt: skip
    stmts.append((
        """INSERT INTO audit_head (tenant_id, seq, last_hash)
            SELECT tenant_id, max(seq), repeat('0', 64) FROM audit_event GROUP BY tenant_id
            ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq""",
        {},
    ))  # fmt: skip
    return stmts


def _output() -> str:
    return (
        '{"decision": "approved", "amount": 150, "currency": "EUR", "order_id": "ORD-00000001", '
        '"reason": "The parcel was lost in transit; a refund of 150 EUR was issued after approval.", '
        '"customer_message": "We are sorry your parcel was lost. We have refunded 150 EUR to your card."}'
    )


def _response() -> str:
    """A stored router answer of about 1.5 KB, like the demo model's."""
    content = json.dumps({"decision": "approved", "amount": 150, "reason": "lost parcel " * 40})
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "model": "demo-frontier",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 60, "total_tokens": 1260},
    })  # fmt: skip


def seed_tasks(db: Database, n: int, riley_id: str) -> dict[str, Any]:
    """Tenants, users and `n` tasks with their rows; returns row counts and the time it took."""
    definition = load_catalog(["orchestrator.demo.catalog"]).pin("refund_request@1").model_dump_json()
    began = time.monotonic()
    with psycopg.connect(db.dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        for t in TENANTS[2:]:
            conn.execute(
                "INSERT INTO tenant (id, name, domain, created_at) VALUES (%s, %s, %s, now())",
                (t, t, f"{t}.example"),
            )
        for t in TENANTS:
            for k in range(6):
                uid = f"usr_big_{t}_{k}"
                conn.execute(
                    'INSERT INTO "user" (id, email, name, created_at) VALUES (%s, %s, %s, now())',
                    (uid, f"{uid}@{t}.example", uid),
                )
                conn.execute(
                    "INSERT INTO membership (tenant_id, user_id, role) VALUES (%s, %s, 'requester')",
                    (t, uid),
                )
        for sql, params in _seed_sql(n):
            conn.execute(sql, {**params, "riley": riley_id, "definition": definition, "output": _output()})  # type: ignore[arg-type]
        conn.commit()
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {**count_rows(db), "seed_seconds": round(time.monotonic() - began, 1)}


def count_rows(db: Database) -> dict[str, Any]:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("task", "task_step", "model_call", "tool_call", "checkpoint", "audit_event")
        }
        counts["acme tasks"] = conn.execute("SELECT count(*) FROM task WHERE tenant_id = 'acme'").fetchone()[
            0
        ]  # type: ignore[index]
        counts["database MB"] = round(
            conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20  # type: ignore[index]
        )
    return {"rows": counts}


@dataclass
class Reader:
    token: str
    sees: int  # how many tasks this reader's list counts
    task_ids: list[str]
    samples: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    errors: int = 0


async def _reader(
    reader: Reader, base: str, until: float, record_from: float, think: float, min_rounds: int = 0
) -> None:
    """Reads until `until`; with `min_rounds`, also until every route was timed that many times
    (a smoke run on a loaded machine must still time each route once, however slow it is)."""
    rng = random.Random()
    timed = dict.fromkeys(ROUTES, 0)
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {reader.token}"},
        timeout=60,
        trust_env=False,
        limits=httpx.Limits(max_connections=1),
    ) as http:
        i = rng.randrange(len(ROUTES))
        while time.monotonic() < until or min(timed.values()) < min_rounds:
            route = ROUTES[i % len(ROUTES)]
            i += 1
            if route == "list first page":
                url, params = "/api/tasks", {}
            elif route == "list deep page (offset)":
                url, params = "/api/tasks", {"offset": rng.randrange(max(1, reader.sees - 50))}
            elif route == "list deep page (before)":
                url, params = "/api/tasks", {"before": rng.choice(reader.task_ids)}
            elif route == "list by status":
                url, params = "/api/tasks", {"status": "failed"}
            else:
                url, params = f"/api/tasks/{rng.choice(reader.task_ids)}", {}
            start = time.monotonic()
            try:
                r = await http.get(url, params=params)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            took = time.monotonic() - start
            if start >= record_from:
                timed[route] += 1
                if ok:
                    reader.samples[route].append(took)
                else:
                    reader.errors += 1
            if think > 0:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))


def cpu_seconds(pid: int) -> float:
    """user + system time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    readers: list[Reader],
    base: str,
    seconds: float,
    think: float,
    warmup: float,
    api_pid: int,
    min_rounds: int = 0,
) -> dict[str, Any]:
    now = time.monotonic()
    began = time.time()
    tasks = [
        asyncio.create_task(_reader(r, base, now + warmup + seconds, now + warmup, think, min_rounds))
        for r in readers
    ]
    await asyncio.sleep(warmup)
    cpu_before, load_before = cpu_seconds(api_pid), os.getloadavg()[0]
    await asyncio.gather(*tasks)
    cpu = cpu_seconds(api_pid) - cpu_before
    seconds = max(seconds, time.monotonic() - now - warmup)  # longer when min_rounds held it
    out: dict[str, Any] = {"think_s": think, "seconds": seconds, "readers": len(readers)}
    out["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    total = 0
    for route in ROUTES:
        samples = [s for r in readers for s in r.samples[route]]
        total += len(samples)
        out[route] = summary_ms(samples)
    out["requests_per_s"] = round(total / seconds, 1)
    out["api_cpu_ms_per_request"] = round(cpu * 1000 / total, 1) if total else None
    out["errors"] = sum(r.errors for r in readers)
    out["started_at"] = began
    for r in readers:
        r.samples = {k: [] for k in ROUTES}
        r.errors = 0
    return out


def explain(db: Database, riley_id: str) -> dict[str, str]:
    """EXPLAIN ANALYZE of the list's queries as the API sends them today (for the docs)."""
    queries = {
        "count": "SELECT count(*) FROM (SELECT * FROM task WHERE tenant_id = 'acme') s",
        "first page": "SELECT * FROM task WHERE tenant_id = 'acme' ORDER BY created_at DESC LIMIT 50",
        "deep page": "SELECT * FROM task WHERE tenant_id = 'acme' ORDER BY created_at DESC OFFSET 60000 LIMIT 50",
        "own first page": f"SELECT * FROM task WHERE tenant_id = 'acme' AND requester_id = '{riley_id}' "
        "ORDER BY created_at DESC LIMIT 50",
    }
    out = {}
    with psycopg.connect(db.dsn) as conn:
        for name, sql in queries.items():
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
            out[name] = "\n".join(r[0] for r in rows)
    return out


async def run(args: Any, code: Path | None) -> dict[str, Any]:
    db = Database("bench_big_reads")
    if args.reuse_db:
        db.name = args.reuse_db  # seeded by an earlier run with --keep-db: migrated, not seeded again
    else:
        db.create()
    root = Path(tempfile.mkdtemp(prefix="frontdesk-big-reads-"))
    settings = Settings(
        state_dir=root / "state",
        database_url=db.url,
        api_port=free_port(),
        temporal_port=free_port(),  # nothing listens there: reads do not need Temporal
        router_port=free_port(),
        catalog_packages=["orchestrator.demo.catalog"],
    )
    api: ManagedProcess | None = None
    result: dict[str, Any] = {"tasks": args.tasks, "readers": args.readers, "database": db.name}
    try:
        info = await asyncio.to_thread(seed.prepare_database, settings)
        tokens = dict(info.tokens)
        with psycopg.connect(db.dsn) as conn:
            riley_id = conn.execute(
                'SELECT id FROM "user" WHERE email = %s', ("riley@acme.example",)
            ).fetchone()[0]  # type: ignore[index]
        if args.reuse_db:
            result["reused"] = True
            result.update(await asyncio.to_thread(count_rows, db))
        else:
            print(f"  reads: seeding {args.tasks} tasks by SQL", file=sys.stderr)
            result.update(await asyncio.to_thread(seed_tasks, db, args.tasks, riley_id))
        result["tasks"] = result["rows"]["task"]
        print(
            f"  reads: rows {result['rows']}, seeded in {result.get('seed_seconds', '(earlier)')} s",
            file=sys.stderr,
        )
        if args.explain:
            result["explain"] = await asyncio.to_thread(explain, db, riley_id)
        env = DevStack(settings, prepare=seed.prepare_database, out=sys.stderr).child_env()
        if code is not None:
            env["PYTHONPATH"] = str(code)
        api = ManagedProcess(
            name="api",
            argv=[sys.executable, "-m", "orchestrator.cli.main", "api"],
            env=env,
            cwd=code or REPO,
            log_path=root / "logs" / "api.log",
            ready_url=f"http://127.0.0.1:{settings.api_port}/healthz",
            ready_timeout=120,
        )
        await api.astart()
        with psycopg.connect(db.dsn) as conn:
            acme_ids = [r[0] for r in conn.execute("SELECT id FROM task WHERE tenant_id = 'acme'")]
            own_ids = [r[0] for r in conn.execute("SELECT id FROM task WHERE requester_id = %s", (riley_id,))]
        readers = []
        for i in range(args.readers):
            if i % 10 < 3:
                readers.append(Reader(tokens["riley@acme.example"], len(own_ids), own_ids))
            else:
                who = "avery@acme.example" if i % 2 else "ada@acme.example"
                readers.append(Reader(tokens[who], len(acme_ids), acme_ids))
        base = f"http://127.0.0.1:{settings.api_port}"
        assert api.pid is not None
        if args.serial_seconds > 0:
            print(f"  reads: serial pass, 1 reader, {args.serial_seconds} s", file=sys.stderr)
            result["serial"] = await load(
                readers[3:4], base, args.serial_seconds, 0.0, args.warmup, api.pid, args.min_rounds
            )
        print(
            f"  reads: paced pass, {args.readers} readers, think {args.think} s, {args.seconds} s",
            file=sys.stderr,
        )
        result["paced"] = await load(
            readers, base, args.seconds, args.think, args.warmup, api.pid, args.min_rounds
        )
        result["api_rss_mb"] = rss_mb([api.pid])
        if args.saturate:
            print(f"  reads: saturated pass, {args.readers} readers, {args.seconds} s", file=sys.stderr)
            result["saturated"] = await load(
                readers, base, args.seconds, 0.0, args.warmup, api.pid, args.min_rounds
            )
    finally:
        if api is not None:
            await api.astop()
        if args.keep_db or args.reuse_db:
            print(f"  reads: database {db.name} kept", file=sys.stderr)
        else:
            db.drop()
    return result
