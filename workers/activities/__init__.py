"""Everything with an effect runs here, as an activity; workflows only orchestrate.

Each implementation is registered under its contract (`orchestrator.contracts.activities`) with
`@implements(CONTRACT)`, which names the activity and refuses, at import, an implementation whose
annotated input or result is not the contract's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from temporalio import activity

from orchestrator.contracts import ActivityContract

F = TypeVar("F", bound=Callable[..., Any])


def implements(contract: ActivityContract[Any, Any]) -> Callable[[F], F]:
    """`activity.defn(name=contract.name)`, after checking the function against the contract."""

    def register(fn: F) -> F:
        hints = typing.get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        takes = hints.get(params[0]) if len(params) == 1 else None
        if takes is not contract.input or hints.get("return") is not contract.result:
            raise TypeError(
                f"{fn.__qualname__} does not implement {contract.name}: it must take one "
                f"{contract.input.__name__} and return {contract.result.__name__}"
            )
        return activity.defn(name=contract.name)(fn)

    return register


@contextlib.asynccontextmanager
async def heartbeating(every: float = 2.0) -> AsyncIterator[None]:
    """Heartbeat every `every` seconds while the body runs (a long wait on another service).

    With a heartbeat timeout on the activity, Temporal notices a worker that died mid-call within
    that timeout and retries on another worker, instead of waiting out the start-to-close timeout.
    """

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    beater = asyncio.create_task(beat())
    try:
        yield
    finally:
        beater.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beater
