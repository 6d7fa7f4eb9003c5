"""Frontdesk demo model: a deterministic OpenAI-compatible server. It is not an LLM.

It stands in for a model provider behind the router so the sample workflows run end to end
offline, and tests can script it. The behaviour itself is pure and lives in
:mod:`orchestrator.demo.behaviour`; this module is the HTTP side.

Endpoints::

    GET    /health                 {"status": "ok", "model": "frontdesk-demo"}
    GET    /v1/models              demo-frontier, demo-open, demo-slm
    POST   /v1/chat/completions    OpenAI chat completions (tools, response_format, stream)
    POST   /_demo/scripts          {"key": "[script:abc]", "responses": [step, ...], "repeat_last": false}
    GET    /_demo/scripts          the scripts and how many calls each has answered
    DELETE /_demo/scripts          forget all scripts and recorded calls
    GET    /_demo/calls?key=...    recorded requests (body + x-* and traceparent headers)

A request belongs to a script when one of its messages contains the script's key (or its
``x-demo-script`` header names the key). A step is ``{"status": 500, "message": "boom"}``,
``{"content": "..."}``, ``{"tool_calls": [{"name": ..., "arguments": {...} or "raw text"}]}`` or
``{"default": true}``; any step may add ``"delay": seconds``. When the steps run out the last one
repeats if ``repeat_last`` is set, otherwise the default behaviour answers. Without a script,
``[demo:fail-500]`` (any 4xx/5xx code) in a user message makes every answer fail with that status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.demo.behaviour import default_reply, usage
from orchestrator.demo.chat import Reply, call_id, text_of, user_text

logger = logging.getLogger(__name__)

LABEL = "Frontdesk demo model (deterministic, not an LLM)"
MODELS = ("demo-frontier", "demo-open", "demo-slm")
FINGERPRINT = "frontdesk-demo-model"
MAX_RECORDED_CALLS = 500
SCRIPT_HEADER = "x-demo-script"
_FAIL_RE = re.compile(r"\[demo:fail-([45]\d\d)\]")
_STREAM_PIECE = 16


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)  # text allows malformed JSON
    id: str | None = None


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: int | None = Field(None, ge=400, le=599)
    message: str = "demo model error"
    content: str | None = None
    tool_calls: list[ScriptedToolCall] | None = None
    default: bool = False
    delay: float = Field(0.0, ge=0, le=600)


class ScriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1)
    responses: list[Step] = Field(default_factory=list)
    repeat_last: bool = False


@dataclass
class Script:
    steps: list[Step]
    repeat_last: bool
    calls: int = 0

    def next_step(self) -> tuple[int, Step] | None:
        index, self.calls = self.calls, self.calls + 1
        if index < len(self.steps):
            return index, self.steps[index]
        if self.repeat_last and self.steps:
            return len(self.steps) - 1, self.steps[-1]
        return None


@dataclass
class DemoState:
    scripts: dict[str, Script] = field(default_factory=dict)
    calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_RECORDED_CALLS))

    def script_key(self, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        if headers.get(SCRIPT_HEADER) in self.scripts:
            return headers[SCRIPT_HEADER]
        texts = [text_of(m.get("content")) for m in _messages(body)]
        return next((key for key in self.scripts if any(key in t for t in texts)), None)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


def _belongs_to(call: dict[str, Any], key: str) -> bool:
    if call["headers"].get(SCRIPT_HEADER) == key:
        return True
    return any(key in text_of(m.get("content")) for m in _messages(call["body"]))


def error_response(status: int, message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "demo_model_error", "param": None, "code": str(status)}}
    return JSONResponse(body, status_code=status)


def scripted_reply(step: Step, body: dict[str, Any]) -> Reply:
    if step.default or (step.content is None and step.tool_calls is None):
        return default_reply(body)
    calls = [
        {
            "id": c.id or call_id(_messages(body), i),
            "name": c.name,
            "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
        }
        for i, c in enumerate(step.tool_calls or [])
    ]
    return Reply(content=step.content, tool_calls=calls)


def limit_tokens(reply: Reply, max_tokens: Any) -> tuple[Reply, str]:
    """Cut text answers at ``max_tokens`` (4 characters a token) like a real model would."""
    if reply.tool_calls:
        return reply, "tool_calls"
    if isinstance(max_tokens, int) and max_tokens > 0 and len(reply.content or "") > max_tokens * 4:
        return Reply(content=(reply.content or "")[: max_tokens * 4]), "length"
    return reply, "stop"


def _openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for c in reply.tool_calls
    ]


def completion(body: dict[str, Any], reply: Reply, finish: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = _openai_tool_calls(reply)
    return {
        "id": f"chatcmpl-demo-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model") or MODELS[0]),
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage(body, reply),
    }


def stream_chunks(body: dict[str, Any], reply: Reply, finish: str) -> list[dict[str, Any]]:
    """The chunks of a streamed answer, OpenAI style; the usage chunk only if it was asked for."""
    base = {
        "id": f"chatcmpl-demo-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": str(body.get("model") or MODELS[0]),
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    chunks = [chunk({"role": "assistant", "content": "" if not reply.tool_calls else None})]
    text = reply.content or ""
    chunks += [chunk({"content": text[i : i + _STREAM_PIECE]}) for i in range(0, len(text), _STREAM_PIECE)]
    for index, call in enumerate(reply.tool_calls):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        args = call["arguments"]
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + _STREAM_PIECE]}}]})
            for i in range(0, len(args), _STREAM_PIECE)
        ]
    chunks.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": usage(body, reply)})
    return chunks


async def _sse(chunks: list[dict[str, Any]]) -> AsyncIterator[str]:
    for item in chunks:
        yield f"data: {json.dumps(item)}\n\n"
    yield "data: [DONE]\n\n"


def create_app() -> FastAPI:
    app = FastAPI(title=LABEL, description="Deterministic stand-in for a model provider. Not an LLM.")
    state = DemoState()
    app.state.demo = state

    @app.middleware("http")
    async def label(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["x-demo-model"] = "true"
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": "frontdesk-demo"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "frontdesk-demo"} for m in MODELS]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error_response(400, "the request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_response(400, "a chat completion needs a `messages` list")
        headers = {
            k.lower(): v
            for k, v in request.headers.items()
            if k.lower().startswith("x-") or k.lower() == "traceparent"
        }
        key = state.script_key(body, headers)
        picked = state.scripts[key].next_step() if key is not None else None
        state.calls.append(
            {"key": key, "script_step": picked[0] if picked else None, "body": body, "headers": headers}
        )
        step = picked[1] if picked else None
        if step is not None and step.delay:
            await asyncio.sleep(step.delay)
        fail = _FAIL_RE.search(user_text(_messages(body)))
        if step is not None and step.status is not None:
            return error_response(step.status, step.message)
        if step is None and fail:
            return error_response(int(fail.group(1)), f"{LABEL}: failure requested by {fail.group(0)}")
        reply = scripted_reply(step, body) if step is not None else default_reply(body)
        reply, finish = limit_tokens(reply, body.get("max_completion_tokens") or body.get("max_tokens"))
        if body.get("stream"):
            return StreamingResponse(_sse(stream_chunks(body, reply, finish)), media_type="text/event-stream")
        return JSONResponse(completion(body, reply, finish))

    @app.post("/_demo/scripts", status_code=201)
    async def add_script(script: ScriptIn) -> dict[str, Any]:
        state.scripts[script.key] = Script(steps=script.responses, repeat_last=script.repeat_last)
        return {"key": script.key, "steps": len(script.responses), "repeat_last": script.repeat_last}

    @app.get("/_demo/scripts")
    async def list_scripts() -> dict[str, Any]:
        return {
            "scripts": [{"key": k, "steps": len(s.steps), "calls": s.calls} for k, s in state.scripts.items()]
        }

    @app.delete("/_demo/scripts")
    async def clear_scripts() -> dict[str, bool]:
        state.scripts.clear()
        state.calls.clear()
        return {"ok": True}

    @app.get("/_demo/calls")
    async def recorded_calls(key: str | None = None) -> dict[str, Any]:
        calls = [c for c in state.calls if key is None or _belongs_to(c, key)]
        return {"key": key, "count": len(calls), "calls": calls}

    return app


def serve(host: str, port: int) -> None:
    """Run the demo model in the foreground (the dev stack starts it as its own process)."""
    import uvicorn

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.setLevel(logging.INFO)
    logger.info("%s listening on http://%s:%d", LABEL, host, port)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
