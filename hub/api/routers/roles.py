"""The permission matrix (any authenticated user): which role may do what, for the console to explain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from hub.api.roles import PERMISSIONS, SCOPED_ROLES, Permission
from hub.api.security import CurrentUser

router = APIRouter(prefix="/roles", tags=["roles"])


class RoleView(BaseModel):
    """A role, whether it is limited to a team's devices, and its permissions (sorted)."""

    role: str
    scoped: bool
    permissions: list[str]


class RolesView(BaseModel):
    """Every permission, and every role with the ones it has."""

    permissions: list[str]
    roles: list[RoleView]


@router.get("", summary="The permission matrix of every role", response_model=RolesView)
async def list_roles(_: CurrentUser) -> dict[str, Any]:
    """Roles in their declared order, each with its permissions; ``scoped`` roles see their team's devices."""
    return {
        "permissions": sorted(p.value for p in Permission),
        "roles": [
            {"role": role.value, "scoped": role in SCOPED_ROLES, "permissions": sorted(p.value for p in granted)}
            for role, granted in PERMISSIONS.items()
        ],
    }
