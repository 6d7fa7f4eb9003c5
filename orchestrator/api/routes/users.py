"""/api/users: the people of the caller's tenant and the roles they hold there (admins).

    GET    /api/users                           members with their roles in this tenant (user:read)
    PUT    /api/users/{user_id}/roles/{role}    grant a role; already held: unchanged (user:write)
    DELETE /api/users/{user_id}/roles/{role}    revoke a role (user:write)

Roles are read per request, so a change applies at once to the person's sessions and bearer
tokens. Another tenant's user id answers 404; revoking your own admin role, a role not held or a
person's last role answers 409; a role that cannot be granted here answers 422. The web page
/admin/users calls the same functions (`orchestrator.services.people`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from orchestrator.api.deps import Allowed, SessionDep
from orchestrator.api.errors import PROBLEMS
from orchestrator.services import people
from orchestrator.services.access import Principal
from orchestrator.services.people import PeoplePublic, PersonPublic

router = APIRouter(prefix="/api", tags=["users"], responses=PROBLEMS)

Reader = Annotated[Principal, Depends(Allowed("user", "read"))]
Writer = Annotated[Principal, Depends(Allowed("user", "write"))]
UserId = Annotated[str, Path(max_length=40, description="a user id, e.g. usr_…")]
Role = Annotated[str, Path(max_length=40, description=f"one of {', '.join(people.ROLES)}")]


@router.get("/users", response_model=PeoplePublic, summary="The people of my tenant and their roles")
def list_users(session: SessionDep, user: Reader) -> PeoplePublic:
    return people.list_people(session, user.tenant_id)


@router.put("/users/{user_id}/roles/{role}", response_model=PersonPublic, summary="Grant a role")
def grant_role(user_id: UserId, role: Role, session: SessionDep, user: Writer) -> PersonPublic:
    return people.grant_role(session, user.tenant_id, user.user_id, user_id, role)


@router.delete("/users/{user_id}/roles/{role}", response_model=PersonPublic, summary="Revoke a role")
def revoke_role(user_id: UserId, role: Role, session: SessionDep, user: Writer) -> PersonPublic:
    return people.revoke_role(session, user.tenant_id, user.user_id, user_id, role)
