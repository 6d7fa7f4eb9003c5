"""The worker entry point: wires dependencies into activities and polls the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from orchestrator import metrics, telemetry
from orchestrator.budgets.pricing import PriceTable
from orchestrator.budgets.service import load_service
from orchestrator.catalog.loader import load_catalog
from orchestrator.db import make_engine
from orchestrator.policy.engine import PolicyEngine
from orchestrator.services.notify import Dispatcher
from orchestrator.services.switches import SwitchService
from orchestrator.settings import Settings
from orchestrator.temporal_client import connect, describe
from workers.activities.budgets import BudgetActivities
from workers.activities.governance import GovernanceActivities
from workers.activities.model_calls import ModelActivities
from workers.activities.model_ledger import DatabaseWait
from workers.activities.outages import OutageInterceptor, OutagePolicy
from workers.activities.pinned import PinnedDefinitions
from workers.activities.plans import PlanActivities
from workers.activities.records import RecordActivities
from workers.activities.round_trips import RoundTripActivities
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
        outage_max_seconds=settings.router_outage_max_seconds,
    )


def worker_options(settings: Settings) -> dict[str, Any]:
    """The Worker options that come from settings: the shutdown grace, the sticky cache's size and
    the build id.

    With a build id the worker joins the worker deployment named after its task queue as that build,
    routing by version off (`use_worker_versioning=False`): the id is recorded on the workflow tasks
    it completes and reported with its pollers, and any worker on the queue still takes any task.
    Versioned routing (pinned workflows, ramps) would need a versioning behaviour on the workflow and
    a `set-current-version` step in every rollout; that is a later choice, not a default."""
    options: dict[str, Any] = {
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_shutdown_grace_seconds),
        "max_cached_workflows": settings.worker_max_cached_workflows,
    }
    if settings.worker_build_id:
        options["deployment_config"] = WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(
                deployment_name=settings.task_queue, build_id=settings.worker_build_id
            ),
            use_worker_versioning=False,
        )
    return options


# The sandbox re-imports, for every workflow it starts (and every replay after a cache eviction),
# each module that is not passed through: for the task workflow that was its six modules, compiled
# from source each time, about a tenth of the worker's CPU per task (bench.compare, py-spy). They
# hold no state, and their purity is guarded elsewhere: tests/unit/test_layout.py keeps their
# imports to the contracts, temporalio, pydantic and the standard library, and the replay tests run
# them in the default sandbox (tests/replay/test_replay.py).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workers.workflows")
)


def tracing(client: Client) -> list[Any]:
    """Temporal's OpenTelemetry interceptor for the worker, unless tracing is off or the client
    carries it already (workers inherit their client's interceptors; twice would mean twice the
    spans)."""
    tracer = telemetry.tracing_interceptor()
    has = any(type(i) is type(tracer) for i in client.config().get("interceptors", []))
    return [] if tracer is None or has else [tracer]


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
    models = ModelActivities(
        engine, router, budget_service, infra_outage_max_seconds=settings.infra_outage_max_seconds
    )
    governance = GovernanceActivities(engine, policy, catalog, switches)
    budgets = BudgetActivities(budget_service, switches, prices)
    tools = ToolActivities(engine, catalog, settings, budget_service)
    plans = PlanActivities(policy)
    round_trips = RoundTripActivities(
        budgets,
        models,
        governance,
        tools,
        switches,
        PinnedDefinitions(engine),
        DatabaseWait(settings.infra_outage_max_seconds),
    )
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TaskWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
        activities=[
            records.set_status,
            records.record_step,
            records.record,
            round_trips.model_turn,
            round_trips.tool_step,
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
        # Classifies every activity's failure (database outage: waited out; refused data: final)
        # and heartbeats activities that have a heartbeat timeout: workers/activities/outages.py.
        interceptors=[OutageInterceptor(OutagePolicy(settings.infra_outage_max_seconds)), *tracing(client)],
        **worker_options(settings),
    )


async def run_worker(settings: Settings) -> None:
    """Poll until SIGTERM or SIGINT, then shut down gracefully: stop polling at once, give running
    activities `worker_shutdown_grace_seconds` to finish, stop the notification dispatcher, return."""
    telemetry.configure(settings, "worker")
    metrics.configure(settings, "worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info(
                "%s: worker stops polling; running activities get %.0f s to finish",
                sig.name,
                settings.worker_shutdown_grace_seconds,
            )
        stop.set()

    client = await connect(settings)  # until connected, a signal simply ends the process
    engine = make_engine(settings.effective_database_url)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with build_router(settings) as router:
            worker = build_worker(client, settings, engine=engine, router=router)
            dispatcher = Dispatcher.from_settings(engine, settings)
            log.info("worker polling %s on %s", settings.task_queue, describe(settings))
            # Both run beside each other; kept referenced and awaited on the way out.
            polling = asyncio.create_task(worker.run(), name="temporal-worker")
            notifications = asyncio.create_task(
                dispatcher.run(stop, settings.notify_poll_seconds), name="notification-dispatcher"
            )
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # also when the worker failed on its own: the dispatcher goes with it
            stopped.cancel()
            shutdown = asyncio.create_task(worker.shutdown())  # polling stops now, not after the notifier
            await notifications
            log.info("notification dispatcher stopped")
            await shutdown
            await polling  # re-raises a worker failure, so the process exits non-zero
            log.info("worker stopped")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        engine.dispose()
        telemetry.shutdown()  # exports the spans and metrics still pending
        metrics.shutdown()
