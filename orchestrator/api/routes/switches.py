"""/api/switches: kill switches for the caller's tenant (admins) and the global one (platform admins).

After a flip, tasks waiting in the switch's reach get the `switches.changed` signal (best effort,
after the response), so a paused task resumes, or stops, at once instead of at its next recheck.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.api.deps import Allowed, StateDep
from orchestrator.api.errors import PROBLEMS, Forbidden, ServiceUnavailable, Unprocessable
from orchestrator.models import KillSwitch, KillSwitchEvent, as_utc
from orchestrator.services.access import Principal, can
from orchestrator.services.switches import SwitchError, SwitchService, wake_waiting_tasks

router = APIRouter(prefix="/api/switches", tags=["switches"], responses=PROBLEMS)


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["global", "tenant", "agent", "tool"]
    subject: str = Field("", max_length=120, description="agent or tool name; empty for tenant and global")
    active: bool
    mode: Literal["pause", "stop"] | None = Field(
        None, description="pause: running tasks wait at their next step; stop: they end. Default stop."
    )
    reason: str = Field("", max_length=2000, description="required when turning a switch on")


class SwitchPublic(BaseModel):
    scope: str
    tenant_id: str
    subject: str
    mode: str
    active: bool
    reason: str
    flipped_by: str
    flipped_at: datetime

    _zone = field_validator("flipped_at")(as_utc)

    @classmethod
    def build(cls, row: KillSwitch) -> SwitchPublic:
        return cls.model_validate(row, from_attributes=True)


class SwitchEventPublic(BaseModel):
    id: int
    scope: str
    tenant_id: str
    subject: str
    mode: str
    active: bool
    reason: str
    flipped_by: str
    at: datetime

    _zone = field_validator("at")(as_utc)

    @classmethod
    def build(cls, row: KillSwitchEvent) -> SwitchEventPublic:
        return cls.model_validate(row, from_attributes=True)


class SwitchList(BaseModel):
    items: list[SwitchPublic]


class SwitchEventList(BaseModel):
    items: list[SwitchEventPublic]


def get_switches(state: StateDep) -> SwitchService:
    switches: SwitchService | None = getattr(state, "switches", None)
    if switches is None:
        raise ServiceUnavailable("Kill switches are not configured in this process.")
    return switches


SwitchesDep = Annotated[SwitchService, Depends(get_switches)]
Reader = Annotated[Principal, Depends(Allowed("switch", "read"))]


@router.get("", response_model=SwitchList, summary="Kill switches of my tenant and the global one")
def list_switches(switches: SwitchesDep, user: Reader) -> SwitchList:
    return SwitchList(items=[SwitchPublic.build(s) for s in switches.list(user.tenant_id)])


@router.get("/history", response_model=SwitchEventList, summary="Every flip, newest first")
def switch_history(
    switches: SwitchesDep, user: Reader, limit: int = Query(100, ge=1, le=1000)
) -> SwitchEventList:
    return SwitchEventList(
        items=[SwitchEventPublic.build(e) for e in switches.history(user.tenant_id, limit)]
    )


@router.post("", response_model=SwitchPublic, summary="Turn a kill switch on or off")
async def flip_switch(
    body: SwitchIn, switches: SwitchesDep, state: StateDep, user: Reader, background: BackgroundTasks
) -> SwitchPublic:
    """Tenant, agent and tool switches apply to the caller's tenant and need `switch:flip`; the
    global switch needs `switch:flip_global`. Running tasks pause or stop at their next step.

    Callers who may not even read switches are refused (403) before their body is looked at."""
    act = "flip_global" if body.scope == "global" else "flip"
    if not can(state, user, "switch", act):
        raise Forbidden(f"Your roles ({', '.join(user.roles) or 'none'}) do not allow switch:{act}.")
    tenant_id = "" if body.scope == "global" else user.tenant_id
    try:
        row = await run_in_threadpool(
            lambda: switches.flip(
                scope=body.scope,
                tenant_id=tenant_id,
                subject=body.subject,
                active=body.active,
                mode=body.mode,
                reason=body.reason,
                actor=user.user_id,
            )
        )
    except SwitchError as exc:
        raise Unprocessable(str(exc)) from exc
    background.add_task(wake_waiting_tasks, state, tenant_id or None)
    return SwitchPublic.build(row)
