"""Run the floor's worker: `python -m bench.floor.worker --temporal HOST:PORT --task-queue Q
--router-url URL --database-url URL` (the router key in FLOOR_ROUTER_KEY)."""

from __future__ import annotations

import argparse
import asyncio
import os

from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor.activities import FloorActivities
from bench.floor.workflow import FloorRefund
from orchestrator.db import make_engine


def build_worker(client: Client, task_queue: str, activities: FloorActivities) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[FloorRefund], activities=activities.all())


async def main(args: argparse.Namespace) -> None:
    client = await Client.connect(args.temporal)
    activities = FloorActivities(
        make_engine(args.database_url), args.router_url, os.environ["FLOOR_ROUTER_KEY"]
    )
    worker = build_worker(client, args.task_queue, activities)
    print("floor worker polling", args.task_queue, flush=True)
    await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--temporal", "--task-queue", "--router-url", "--database-url"):
        parser.add_argument(flag, required=True)
    asyncio.run(main(parser.parse_args()))
