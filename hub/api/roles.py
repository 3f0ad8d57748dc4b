"""Roles, permissions and team scopes: the authorisation model as data, without any HTTP.

A role says *what* a user may do (the permission matrix below); the user's team says *on which devices*
(a scope of site and kind globs). Administrators are not scoped. Operators and viewers are scoped to their
team: a viewer is a read-only operator, so a city-wide read-only account is a viewer in a team whose
scope is ``*`` by ``*``. docs/api-security.md shows the matrix as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar

from hub.api.settings import GrantConfig, TeamConfig


class Role(StrEnum):
    """What a user is, as far as the API is concerned."""

    ADMIN = "admin"
    IT_OPERATOR = "it_operator"
    POLICE_OPERATOR = "police_operator"
    ADP_OPERATOR = "adp_operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    """One kind of action on one kind of resource."""

    DEVICES_READ = "devices.read"
    DEVICES_REVOKE = "devices.revoke"
    REGISTRATIONS_READ = "registrations.read"
    REGISTRATIONS_DECIDE = "registrations.decide"
    ALERTS_READ = "alerts.read"
    ALERTS_ACK = "alerts.ack"
    RULES_READ = "rules.read"
    RULES_WRITE = "rules.write"
    USERS_ADMIN = "users.admin"
    AUDIT_READ = "audit.read"
    REPORTS_READ = "reports.read"


_READ = frozenset({Permission.DEVICES_READ, Permission.ALERTS_READ, Permission.RULES_READ, Permission.REPORTS_READ})
_OPERATE = _READ | {
    Permission.REGISTRATIONS_READ,
    Permission.REGISTRATIONS_DECIDE,
    Permission.DEVICES_REVOKE,
    Permission.ALERTS_ACK,
}

#: The permission matrix. Operators act on their team's devices only (Scope); rules are written by IT,
#: who run the platform, and by administrators; users and the audit log are administrators' business.
PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.IT_OPERATOR: _OPERATE | {Permission.RULES_WRITE},
    Role.POLICE_OPERATOR: _OPERATE,
    Role.ADP_OPERATOR: _OPERATE,
    Role.VIEWER: _READ,
}

#: Roles that need a team (everyone but administrators).
SCOPED_ROLES = frozenset(Role) - {Role.ADMIN}


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """Devices whose site matches one of ``sites`` and whose kind matches one of ``kinds`` (globs)."""

    sites: tuple[str, ...]
    kinds: tuple[str, ...]

    def allows(self, site: str, kind: str) -> bool:
        """Whether this grant covers a device of ``kind`` at ``site``."""
        return any(fnmatchcase(site, p) for p in self.sites) and any(fnmatchcase(kind, p) for p in self.kinds)

    @classmethod
    def of(cls, config: GrantConfig) -> Grant:
        """The grant a configuration section describes."""
        return cls(sites=tuple(config.sites), kinds=tuple(config.kinds))


class Located(Protocol):
    """Anything at a site with a kind: a device, a registration, an alert."""

    @property
    def site(self) -> str: ...

    @property
    def kind(self) -> str: ...


L = TypeVar("L", bound=Located)
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The devices a user may see and act on: everything, or the union of some grants."""

    unrestricted: bool = False
    grants: tuple[Grant, ...] = ()

    def allows(self, site: str, kind: str) -> bool:
        """Whether the scope covers a device of ``kind`` at ``site``."""
        return self.unrestricted or any(grant.allows(site, kind) for grant in self.grants)

    def filter(self, items: Iterable[L]) -> list[L]:
        """The items in scope, in their order."""
        return [item for item in items if self.allows(item.site, item.kind)]

    def filter_by(self, items: Iterable[T], where: Callable[[T], tuple[str, str]]) -> list[T]:
        """The items in scope, for items that are not :class:`Located`: ``where(item)`` gives (site, kind)."""
        return [item for item in items if self.allows(*where(item))]

    def describe(self) -> list[dict[str, list[str]]]:
        """The scope as JSON: ``[{"sites": [...], "kinds": [...]}]``; everything is ``*`` by ``*``."""
        if self.unrestricted:
            return [{"sites": ["*"], "kinds": ["*"]}]
        return [{"sites": list(g.sites), "kinds": list(g.kinds)} for g in self.grants]


#: An administrator's scope.
EVERYTHING = Scope(unrestricted=True)
#: The scope of a scoped user whose team is not (or no longer) configured: fail closed.
NOTHING = Scope()


def team_scope(team: TeamConfig) -> Scope:
    """A team's scope: its sites by kinds and each further grant."""
    return Scope(grants=(Grant.of(team), *(Grant.of(g) for g in team.grants)))


def scope_for(role: Role, team: str | None, teams: Mapping[str, TeamConfig]) -> Scope:
    """What a user of ``role`` in ``team`` may see."""
    if role is Role.ADMIN:
        return EVERYTHING
    config = teams.get(team) if team else None
    return team_scope(config) if config else NOTHING


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The authenticated caller of a request."""

    username: str
    role: Role
    team: str | None
    scope: Scope

    @property
    def permissions(self) -> frozenset[Permission]:
        """What the role allows."""
        return PERMISSIONS[self.role]

    def can(self, permission: Permission) -> bool:
        """Whether the role allows ``permission``."""
        return permission in PERMISSIONS[self.role]
