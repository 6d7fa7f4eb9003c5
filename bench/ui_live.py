"""Benchmark: the web UI over real HTTP against `frontdesk dev`.

Signs Riley in through the login form, submits the refund through the submit form, follows the
task page's server-sent events, and lets the bench approve as Avery. Measures:

* decision -> timeline: from the approval's HTTP answer until the page's stream delivers a
  timeline showing the checkpoint approved;
* completion -> timeline: from the moment the worker recorded the task's end (`ended_at`) until
  the stream delivers the `completed` timeline;
* page render time (GET, server side + loopback) of the task page, the task list, the inbox and
  the checkpoint page.

Prints the figures; asserts nothing. Usage: `python -m bench.ui_live --runs 10` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.refund_e2e import new_order, start_stack
from orchestrator.demo.seed import prepare_database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def cookie_carrier() -> dict[str, list]:  # type: ignore[type-arg]
    """Event hooks that keep the session cookie as a browser does: browsers treat loopback as a
    secure origin and send `Secure` cookies to it, httpx's cookie jar sends them only over https."""
    jar: dict[str, str] = {}

    async def keep(response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or value in ('""', ""):
                jar.pop(name, None)
            else:
                jar[name] = value

    async def send(request: httpx.Request) -> None:
        if jar:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())

    return {"request": [send], "response": [keep]}


async def sign_in(base: str, email: str, password: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=base, timeout=60, event_hooks=cookie_carrier())
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = await client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text[:300]
    csrf = CSRF.search((await client.get("/account")).text).group(1)  # type: ignore[union-attr]
    return client, csrf


async def timed_get(client: httpx.AsyncClient, path: str) -> float:
    began = time.perf_counter()
    r = await client.get(path)
    r.raise_for_status()
    return time.perf_counter() - began


async def one_run(riley, riley_csrf, avery, api, tokens, temporal, order_id, pages):  # type: ignore[no-untyped-def]
    r = await riley.post(
        "/tasks",
        data={"csrf_token": riley_csrf, "workflow": "refund_request@1",
              "input": f"Order {order_id}: refund 150 EUR, the parcel was lost."},
    )
    assert r.status_code == 303, r.text[:500]
    task_id = r.headers["location"].rsplit("/", 1)[1]
    approver = {"Authorization": f"Bearer {tokens['avery']}"}
    decided_at: float | None = None
    seen: dict[str, float] = {}

    async def follow() -> None:
        async with riley.stream("GET", f"/tasks/{task_id}/events") as stream:
            data: list[str] = []
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    html, data = "\n".join(data), []
                    now = time.time()
                    if decided_at is not None and "approved" in html and "approved" not in seen:
                        seen["approved"] = now
                    if 'id="task-status">completed<' in html:
                        seen["completed"] = now
                        return

    follower = asyncio.create_task(follow())
    while True:
        cps = (await api.get("/api/checkpoints?status=open", headers=approver)).json()["items"]
        mine = [c for c in cps if c["task_id"] == task_id]
        if mine:
            break
        await asyncio.sleep(0.02)
    pages["checkpoint page"].append(await timed_get(avery, f"/checkpoints/{mine[0]['id']}"))
    pages["inbox"].append(await timed_get(avery, "/inbox"))
    d = await api.post(f"/api/checkpoints/{mine[0]['id']}/decision", json={"decision": "approve"}, headers=approver)
    d.raise_for_status()
    decided_at = time.time()
    await asyncio.wait_for(follower, 60)
    await temporal.get_workflow_handle(f"task-{task_id}").result()
    task = (await api.get(f"/api/tasks/{task_id}", headers=approver)).json()
    ended = datetime.fromisoformat(task["ended_at"])  # when the worker recorded the end
    pages["task page"].append(await timed_get(riley, f"/tasks/{task_id}"))
    pages["task list"].append(await timed_get(riley, "/tasks"))
    return seen.get("approved", seen["completed"]) - decided_at, seen["completed"] - ended.timestamp()


def ms(values: list[float], q: float = 0.5) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:7.1f}"


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-ui-") as tmp:
        proc, settings, _ready = start_stack(Path(tmp))
        try:
            info = prepare_database(settings)
            tokens = {email.split("@")[0]: token for email, token in info.tokens}
            passwords = {email.split("@")[0]: pw for email, pw, _ in info.logins}
            base = f"http://127.0.0.1:{settings.api_port}"
            riley, riley_csrf = await sign_in(base, "riley@acme.example", passwords["riley"])
            avery, _ = await sign_in(base, "avery@acme.example", passwords["avery"])
            temporal = await Client.connect(settings.temporal_address)
            pages: dict[str, list[float]] = {k: [] for k in ("task page", "task list", "inbox", "checkpoint page")}
            async with httpx.AsyncClient(base_url=base, timeout=60) as api:
                await one_run(riley, riley_csrf, avery, api, tokens, temporal, new_order(settings, 0), pages)
                pages = {k: [] for k in pages}  # the warm-up run does not count
                results = [
                    await one_run(riley, riley_csrf, avery, api, tokens, temporal, new_order(settings, i), pages)
                    for i in range(1, runs + 1)
                ]
            await riley.aclose()
            await avery.aclose()
        finally:
            proc.stop()
    print(f"web UI, {runs} refund runs over real HTTP (server-sent events polled every 0.5 s):")
    print(f"  decision -> timeline shows it    p50 {ms([r[0] for r in results])} ms   p95 {ms([r[0] for r in results], 0.95)} ms")
    print(f"  completion -> timeline shows it  p50 {ms([r[1] for r in results])} ms   p95 {ms([r[1] for r in results], 0.95)} ms")
    for name, values in pages.items():
        print(f"  GET {name:<16} p50 {ms(values)} ms   p95 {ms(values, 0.95)} ms")
    print(f"  (median of {statistics.median([len(v) for v in pages.values()]):.0f} requests per page)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
