"""User administration (``users.admin``): list, create, change role/team/disabled, delete, reset a password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from hub.api.context import HubApi
from hub.api.errors import ApiError, conflict, not_found
from hub.api.pagination import Limit, Offset, page
from hub.api.roles import SCOPED_ROLES
from hub.api.security import ApiDep, AuditDep, Permission, Principal, Role, require
from hub.api.settings import MAX_PASSWORD_LENGTH
from hub.api.users import RESERVED_USERNAMES, USERNAME_PATTERN, User

router = APIRouter(prefix="/users", tags=["users"])

UserAdmin = Annotated[Principal, Depends(require(Permission.USERS_ADMIN))]
Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    role: Role
    team: str | None = None


class UserUpdate(BaseModel):
    """Fields to change; an absent field is unchanged, ``"team": null`` clears the team."""

    role: Role | None = None
    team: str | None = None
    disabled: bool | None = None


class PasswordReset(BaseModel):
    """The user's new password (tell them out of band; they should change it)."""

    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


def _check_team(api: HubApi, role: Role, team: str | None) -> None:
    if team is not None and team not in api.settings.teams:
        raise ApiError(422, "unknown_team", f"no team {team!r}; known: {', '.join(sorted(api.settings.teams))}")
    if role in SCOPED_ROLES and team is None:
        raise ApiError(422, "team_required", f"a {role.value} needs a team: it sees its team's devices only")


def _check_password(api: HubApi, password: str, username: str) -> None:
    problem = api.password_problem(password, username)
    if problem:
        raise ApiError(422, "weak_password", f"the password {problem}")


async def _existing(api: HubApi, username: str) -> User:
    user = await api.users.get(username)
    if user is None:
        raise not_found("no such user")
    return user


async def _keep_an_admin(api: HubApi, user: User, admin: Principal, *, removed: bool) -> None:
    """Refuse to lock everyone out: removing oneself, or the last enabled administrator."""
    if removed and user.username == admin.username:
        raise conflict("administrators cannot remove or disable themselves; ask another administrator")
    if removed and user.role is Role.ADMIN and not user.disabled and await api.users.count_admins() <= 1:
        raise conflict("this is the last enabled administrator")


@router.get("", summary="Users, by name")
async def list_users(
    _: UserAdmin,
    api: ApiDep,
    role: Annotated[Role | None, Query()] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A page of users, optionally of one role or team."""
    users = [u for u in await api.users.all() if (role is None or u.role is role) and (team is None or u.team == team)]
    return page([user.as_dict() for user in users], limit, offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user")
async def create_user(body: UserCreate, _: UserAdmin, api: ApiDep, audit: AuditDep) -> dict[str, Any]:
    """A scoped role needs a configured team; the password must meet the policy."""
    if body.username in RESERVED_USERNAMES:
        raise ApiError(422, "reserved_username", f"{body.username!r} is reserved")
    _check_team(api, body.role, body.team)
    _check_password(api, body.password, body.username)
    user = await api.users.create(body.username, body.password, body.role, body.team)
    if user is None:
        raise conflict("a user with this name exists")
    await audit("user.created", target=user.username, detail={"role": user.role.value, "team": user.team})
    return user.as_dict()


@router.get("/{username}", summary="One user")
async def get_user(username: Username, _: UserAdmin, api: ApiDep) -> dict[str, Any]:
    """The user."""
    return (await _existing(api, username)).as_dict()


@router.patch("/{username}", summary="Change a user's role, team or disabled flag")
async def update_user(
    username: Username, body: UserUpdate, admin: UserAdmin, api: ApiDep, audit: AuditDep
) -> dict[str, Any]:
    """Disabling revokes the user's tokens; a role or team change applies to their next request."""
    user = await _existing(api, username)
    changes = body.model_dump(exclude_unset=True)
    role = body.role or user.role
    team = body.team if "team" in changes else user.team
    demoted = user.role is Role.ADMIN and role is not Role.ADMIN
    await _keep_an_admin(api, user, admin, removed=demoted or body.disabled is True)
    _check_team(api, role, team)
    updated = await api.users.update(username, role=body.role, team=team, disabled=body.disabled)
    assert updated is not None
    detail = {name: None if value is None else str(value) for name, value in changes.items()}
    await audit("user.updated", target=username, detail=detail)
    return updated.as_dict()


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a user")
async def delete_user(username: Username, admin: UserAdmin, api: ApiDep, audit: AuditDep) -> None:
    """The user and their tokens go; their audit entries stay."""
    user = await _existing(api, username)
    await _keep_an_admin(api, user, admin, removed=True)
    await api.users.delete(username)
    await audit("user.deleted", target=username, detail={"role": user.role.value})


@router.post("/{username}/password", status_code=status.HTTP_204_NO_CONTENT, summary="Reset a user's password")
async def reset_password(username: Username, body: PasswordReset, _: UserAdmin, api: ApiDep, audit: AuditDep) -> None:
    """Sets the password and revokes every token of the user."""
    await _existing(api, username)
    _check_password(api, body.new_password, username)
    await api.users.set_password(username, body.new_password)
    await audit("user.password_reset", target=username)
