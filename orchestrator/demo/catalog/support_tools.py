"""Tools of the support ticket triage sample, acting on the demo helpdesk table `demo_ticket`.

Each runs as its own Temporal activity and is idempotent by the key the workflow gives it:
`update_ticket` stores its key on the ticket in the same transaction as the change, so a retried
activity reports the update it already made instead of writing (and stamping) it again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import select

from orchestrator.catalog.context import ToolContext
from orchestrator.catalog.registry import ToolFailure
from orchestrator.demo.catalog.settings import DemoCatalogSettings
from orchestrator.demo.catalog.support_models import LookupTicketArgs, UpdateTicketArgs
from orchestrator.demo.catalog.tables import DemoTicket
from orchestrator.models import utcnow

Context = ToolContext[DemoCatalogSettings]


def _ticket_view(ticket: DemoTicket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "customer": ticket.customer,
        "email": ticket.email,
        "subject": ticket.subject,
        "body": ticket.body,
        "status": ticket.status,
        "intent": ticket.intent,
    }


def _find(session: Any, ticket_id: str, tenant_id: str, *, for_update: bool = False) -> DemoTicket:
    query = select(DemoTicket).where(DemoTicket.id == ticket_id, DemoTicket.tenant_id == tenant_id)
    ticket = session.exec(query.with_for_update() if for_update else query).first()
    if ticket is None:
        raise ToolFailure(f"ticket {ticket_id} not found")
    return ticket  # type: ignore[no-any-return]  # session.get of a table class is typed Any here


async def lookup_ticket(args: LookupTicketArgs, ctx: Context) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.session() as session:
            return _ticket_view(_find(session, args.ticket_id, ctx.tenant_id))

    return await asyncio.to_thread(run)


async def update_ticket(args: UpdateTicketArgs, ctx: Context) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with ctx.session() as session:
            ticket = _find(session, args.ticket_id, ctx.tenant_id, for_update=True)
            replayed = ticket.update_key == ctx.idempotency_key
            if not replayed:
                ticket.status = args.status
                ticket.intent = args.intent
                ticket.reply = args.reply
                ticket.update_key = ctx.idempotency_key
                ticket.updated_at = utcnow()
                session.add(ticket)
                session.flush()
            return {
                "ticket_id": ticket.id,
                "status": ticket.status,
                "intent": ticket.intent,
                "replayed": replayed,
            }

    return await asyncio.to_thread(run)
