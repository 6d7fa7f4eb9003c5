"""Traces and metrics of a real task, received by a real OTLP/HTTP endpoint.

The receiver is an HTTP server in this process that accepts POST /v1/traces and /v1/metrics and
decodes the protobuf (opentelemetry-proto), as a collector would. A refund task with an approval
runs through the real stack (API -> Temporal -> worker -> LiteLLM proxy -> demo model); the test
follows the spans' parent links from each model call up to the API request that submitted the
task, and reads the GenAI metrics and the API's Prometheus /metrics.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import SeededDb, running_stack, stack_settings
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from orchestrator import metrics, telemetry
from orchestrator.temporal_client import interceptors
from workers.workflows.task import TaskWorkflow

METRICS_TOKEN = "metrics-" + "x" * 24


class Receiver:
    """An OTLP/HTTP (protobuf) endpoint that keeps every request it was sent."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.raw: list[bytes] = []
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.raw.append(body)
                receiver.content_types.add(self.headers.get("Content-Type", ""))
                if self.path == "/v1/traces":
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                    answer = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                    answer = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[Span]:
        return [
            s for req in self.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
        ]

    def metric_points(self, name: str) -> list[Any]:
        points: list[Any] = []
        for req in self.metrics:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name == name:
                            data = m.WhichOneof("data")
                            points += list(getattr(m, data).data_points)
        return points


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(span: Span) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


def point_attrs(point: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in point.attributes}


@pytest.mark.slow
async def test_a_refund_task_is_one_trace_from_the_request_to_the_model_calls(
    db: SeededDb,
    temporal_env: WorkflowEnvironment,
    router_url: str,
    demo_model_url: str,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    overrides = {
        "otel_exporter_otlp_endpoint": receiver.url,
        "otel_metric_export_interval_seconds": 60,
        "metrics_token": METRICS_TOKEN,
    }
    settings = stack_settings(db, router_url, tmp_path, **overrides)
    assert telemetry.configure(settings, "api")
    assert metrics.configure(settings, "api", prometheus=True)
    try:
        # The API's client as `connect()` would build it: the task root, then Temporal's tracing.
        client = Client(**{**temporal_env.client.config(), "interceptors": interceptors()})
        async with running_stack(db, client, router_url, demo_model_url, tmp_path, **overrides) as stack:
            order = stack.make_order("300.00")
            task = await stack.submit(
                f"Customer on order {order} asks for a refund of 150 EUR: the lamp arrived broken."
            )
            cp = await stack.open_checkpoint(task["id"])
            assert (await stack.decide(cp["id"], "approve", comment="photo checked")).status_code == 200
            done = await stack.wait(task["id"], {"completed", "failed", "rejected"})
            assert done["status"] == "completed", done["error"]

            # Its history, recorded with tracing on, replays without it: tracing adds no command.
            history = await client.get_workflow_handle(f"task-{task['id']}").fetch_history()
            plain = Replayer(workflows=[TaskWorkflow], data_converter=pydantic_data_converter)
            assert (await plain.replay_workflow(history, raise_on_replay_failure=True)).replay_failure is None

            scraped = await stack.api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            refused = await stack.api.get("/metrics")
            telemetry.flush()
            metrics.flush()
    finally:
        telemetry.shutdown()
        metrics.shutdown()

    # --- traces -------------------------------------------------------------------------------
    assert receiver.content_types == {"application/x-protobuf"}
    spans = receiver.spans()
    by_id = {s.span_id: s for s in spans}
    names = [s.name for s in spans]
    submit = next(s for s in spans if s.name == "POST /api/tasks")
    assert submit.kind == Span.SPAN_KIND_SERVER
    trace_id = submit.trace_id
    task_spans = [s for s in spans if attrs(s).get("frontdesk.task.id") == task["id"]]

    workflow = next(s for s in spans if s.name == "invoke_workflow refund_request@1")
    assert workflow.trace_id == trace_id and workflow.parent_span_id == submit.span_id
    assert workflow.span_id == telemetry.workflow_span_id(task["id"]).to_bytes(8, "big")
    assert attrs(workflow)["gen_ai.operation.name"] == "invoke_workflow"
    assert attrs(workflow)["frontdesk.task.outcome"] == "resolved"
    assert workflow.end_time_unix_nano - workflow.start_time_unix_nano > 0

    def ancestors(span: Span) -> list[str]:
        chain = []
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            chain.append(span.name)
        return chain

    chats = [s for s in task_spans if s.name.startswith("chat ")]
    assert len(chats) == 3, names
    for chat in chats:
        a = attrs(chat)
        assert chat.trace_id == trace_id and chat.kind == Span.SPAN_KIND_CLIENT
        assert a["gen_ai.operation.name"] == "chat"
        assert chat.name == f"chat {a['gen_ai.request.model']}"
        assert a["gen_ai.request.model"].startswith("tier-")
        assert a["gen_ai.response.model"]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["frontdesk.cost_usd"] > 0 and a["frontdesk.rung"] == 1
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # capture is off
        # chat <- frontdesk.turn <- invoke_agent (the step) <- invoke_workflow <- request
        chain = ancestors(chat)
        assert chain[0].startswith("frontdesk.turn "), chain
        assert chain[1] == "invoke_agent refund_agent", chain
        assert chain[2:] == [workflow.name, "POST /api/tasks"], chain
        settle = [
            s for s in spans if s.parent_span_id == chat.span_id and s.name == "frontdesk.budget.settle"
        ]
        assert len(settle) == 1
    turn = by_id[chats[0].parent_span_id]
    assert attrs(turn)["gen_ai.agent.name"] and attrs(turn)["frontdesk.turn"] >= 1
    reserve = [s for s in spans if s.parent_span_id == turn.span_id and s.name == "frontdesk.budget.reserve"]
    assert len(reserve) == 1 and attrs(reserve[0])["frontdesk.budget.ok"] is True
    # One invoke_agent span per agent step, spanning its turns and the tool call run after the
    # approval; the step's three model calls (two turns before the checkpoint, one after) hang under it.
    steps = [s for s in task_spans if s.name.startswith("invoke_agent ")]
    assert len(steps) == 1, [s.name for s in steps]
    step = steps[0]
    a = attrs(step)
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "refund_agent"
    assert a["frontdesk.step"] and a["frontdesk.step.status"] == "completed"
    assert step.parent_span_id == workflow.span_id and step.trace_id == trace_id
    assert step.span_id == telemetry.step_span_id(task["id"], a["frontdesk.step"]).to_bytes(8, "big")
    turns = [s for s in task_spans if s.parent_span_id == step.span_id and s.name.startswith("frontdesk.turn ")]
    assert len(turns) == 3, [s.name for s in task_spans]
    assert all(step.start_time_unix_nano <= t.start_time_unix_nano for t in turns)
    assert all(t.end_time_unix_nano <= step.end_time_unix_nano for t in turns)

    tools = [s for s in task_spans if s.name == "execute_tool issue_refund"]
    asked = next(s for s in tools if attrs(s).get("frontdesk.tool.decision") == "approve")
    a = attrs(asked)
    assert a["gen_ai.operation.name"] == "execute_tool" and a["gen_ai.tool.call.id"]
    assert a["frontdesk.policy.version"] and a["frontdesk.policy.rule"] and a["frontdesk.checkpoint.opened"]
    ran = next(s for s in tools if attrs(s).get("frontdesk.tool.decision") == "approved")
    assert attrs(ran)["frontdesk.tool.ok"] is True and ran.trace_id == trace_id
    assert ran.parent_span_id == step.span_id  # the workflow's own tool step, under the agent step
    assert by_id[asked.parent_span_id].name.startswith("frontdesk.turn ")  # asked inside a turn

    decision = next(s for s in spans if s.name == "frontdesk.checkpoint.decision")
    assert attrs(decision)["frontdesk.checkpoint.decision"] == "approve" and decision.trace_id == trace_id
    wait = next(s for s in spans if s.name == "frontdesk.checkpoint.wait")
    assert attrs(wait)["frontdesk.checkpoint.id"] == cp["id"]
    assert wait.end_time_unix_nano > wait.start_time_unix_nano and wait.trace_id == trace_id

    # Every span the worker made for the task's workflow is in the submitting request's trace; the
    # decision's own request has its trace (its update's client span), linked from the workflow's.
    temporal = [s for s in spans if attrs(s).get("temporalWorkflowID") == f"task-{task['id']}"]
    outside = [s for s in temporal if s.trace_id != trace_id]
    assert {s.name.split(":")[0] for s in temporal if s.trace_id == trace_id} >= {
        "StartWorkflow", "RunWorkflow", "StartActivity", "RunActivity", "HandleUpdate", "CompleteWorkflow"
    }  # fmt: skip
    assert outside and all(
        s.kind == Span.SPAN_KIND_CLIENT and s.name.startswith("StartWorkflowUpdate:") for s in outside
    )
    decided = next(s for s in spans if s.name == "POST /api/checkpoints/{checkpoint_id}/decision")
    assert {s.trace_id for s in outside} == {decided.trace_id}
    handled = next(s for s in temporal if s.name.startswith("HandleUpdate:"))
    assert handled.trace_id == trace_id and [link.span_id for link in handled.links] == [outside[0].span_id]

    # No secret went out: not the router key, not the metrics token.
    for body in receiver.raw:
        assert stack.settings.router_api_key.encode() not in body
        assert METRICS_TOKEN.encode() not in body

    # --- metrics ------------------------------------------------------------------------------
    tokens = receiver.metric_points("gen_ai.client.token.usage")
    by_type = {point_attrs(p)["gen_ai.token.type"]: p for p in tokens}
    assert set(by_type) == {"input", "output"}
    assert sum(p.count for p in tokens) >= 6 and all(p.sum > 0 for p in tokens)
    duration = receiver.metric_points("gen_ai.client.operation.duration")
    assert sum(p.count for p in duration) >= 3
    assert all(point_attrs(p)["gen_ai.operation.name"] == "chat" for p in duration)
    ended = receiver.metric_points("frontdesk.tasks.ended")
    assert any(
        point_attrs(p) == {"frontdesk.task.status": "completed", "frontdesk.task.outcome": "resolved"}
        and p.as_int >= 1
        for p in ended
    )
    cost = receiver.metric_points("frontdesk.task.cost")
    assert cost and sum(p.sum for p in cost) > 0
    assert receiver.metric_points("frontdesk.tasks")  # the API's gauges, read from the database

    assert scraped.status_code == 200, scraped.text
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = scraped.text
    assert "# TYPE gen_ai_client_token_usage_tokens histogram" in text
    assert 'gen_ai_client_token_usage_tokens_bucket{gen_ai_operation_name="chat"' in text
    assert "# TYPE frontdesk_tasks_ended_total counter" in text
    assert "frontdesk_checkpoints_open" in text or "frontdesk_tasks{" in text
    assert refused.status_code == 401
    assert METRICS_TOKEN not in text and stack.settings.router_api_key not in text
