"""The worker entry point: wires dependencies into activities and polls the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from orchestrator import telemetry
from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import load_service
from orchestrator.catalog.loader import load_catalog
from orchestrator.db import make_engine
from orchestrator.policy.engine import PolicyEngine
from orchestrator.services.notify import Dispatcher
from orchestrator.services.switches import SwitchService
from orchestrator.settings import Settings
from orchestrator.temporal_client import connect
from workers.activities.budgets import BudgetActivities
from workers.activities.governance import GovernanceActivities
from workers.activities.model_calls import ModelActivities
from workers.activities.plans import PlanActivities
from workers.activities.records import RecordActivities
from workers.activities.tools import ToolActivities
from workers.router_client import RouterClient
from workers.workflows.task import TaskWorkflow

log = logging.getLogger(__name__)


def build_router(settings: Settings) -> RouterClient:
    return RouterClient(
        settings.router_url,
        settings.router_api_key,
        prices=PriceTable.load(settings.policies_dir / "prices.yaml"),
        max_requests=settings.router_max_requests,
        timeout_seconds=settings.router_timeout_seconds,
        backoff_seconds=settings.router_backoff_seconds,
    )


def build_worker(
    client: Client,
    settings: Settings,
    *,
    engine: Engine,
    router: RouterClient,
    task_queue: str | None = None,
) -> Worker:
    catalog = load_catalog(settings.catalog_packages)
    policy = PolicyEngine(settings.policies_dir)
    switches = SwitchService(engine, cache_seconds=settings.switch_cache_seconds)
    budget_service = load_service(engine, settings.policies_dir)
    prices = PriceTable.load(settings.policies_dir / "prices.yaml")
    records = RecordActivities(engine)
    models = ModelActivities(engine, router, budget_service)
    governance = GovernanceActivities(engine, policy, catalog, switches)
    budgets = BudgetActivities(budget_service, switches, prices)
    tools = ToolActivities(engine, catalog, settings, budget_service)
    plans = PlanActivities(policy)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TaskWorkflow],
        activities=[
            records.set_status,
            records.record_step,
            models.call,
            governance.authorize_tool,
            governance.open_checkpoint,
            governance.record_decision,
            governance.reauthorize,
            governance.escalate,
            governance.record_reassign,
            budgets.reserve,
            budgets.raise_limit,
            budgets.check_switches,
            budgets.release,
            plans.validate,
            *tools.activities(),
        ],
        activity_executor=ThreadPoolExecutor(max_workers=8),
    )


async def run_worker(settings: Settings) -> None:
    telemetry.configure(settings.otel_console)
    client = await connect(settings)
    engine = make_engine(settings.effective_database_url)
    async with build_router(settings) as router:
        worker = build_worker(client, settings, engine=engine, router=router)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        dispatcher = Dispatcher.from_settings(engine, settings)
        async with worker:
            # The notifier runs beside the worker; kept referenced and awaited on the way out.
            notifications = asyncio.create_task(dispatcher.run(stop, settings.notify_poll_seconds))
            await stop.wait()
            await notifications
    engine.dispose()
