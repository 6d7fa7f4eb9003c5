"""What the API process holds for its lifetime, wired once at start-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from temporalio.client import Client

from orchestrator.budgets.service import BudgetService
from orchestrator.catalog.registry import Catalog
from orchestrator.errors import ServiceUnavailable
from orchestrator.policy.engine import PolicyEngine
from orchestrator.services.intake import Intake
from orchestrator.services.switches import SwitchService
from orchestrator.settings import Settings
from orchestrator.temporal_client import connect


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    policy: PolicyEngine
    catalog: Catalog
    budgets: BudgetService
    switches: SwitchService
    intake: Intake
    temporal: Client | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def temporal_client(self) -> Client:
        """Connect lazily, so the API serves reads while Temporal is still starting or down."""
        if self.temporal is not None:
            return self.temporal
        async with self._lock:
            if self.temporal is None:
                try:
                    self.temporal = await connect(self.settings)
                except Exception as exc:
                    raise ServiceUnavailable(
                        f"Temporal at {self.settings.temporal_address} is not reachable "
                        f"({exc.__class__.__name__}); "
                        "try again shortly."
                    ) from exc
        return self.temporal
