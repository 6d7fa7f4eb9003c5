"""The committed histories replay with Temporal's OpenTelemetry interceptor on, as a worker with
tracing on runs them (the worker's own sandbox runner too): the interceptor adds no command and
makes no span while replaying."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.worker import WORKFLOW_RUNNER
from workers.workflows.task import TaskWorkflow

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(ROOT)) for p in HISTORIES])
async def test_replay_with_tracing(path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    replayer = Replayer(
        workflows=[TaskWorkflow],
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor(provider.get_tracer("test"))],
        workflow_runner=WORKFLOW_RUNNER,
    )
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    assert exporter.get_finished_spans() == ()  # replaying is not running: no spans
    provider.shutdown()
