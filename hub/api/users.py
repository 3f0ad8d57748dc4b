"""API users and their access tokens, in SQLite.

Passwords are argon2id hashes (argon2-cffi's RFC 9106 defaults), rehashed at the next login when the
parameters change. Access tokens are opaque random strings (256 bits); only their SHA-256 is stored, so a
copy of the file gives no usable token. A login for an unknown or disabled user still verifies a dummy
hash, so response times do not tell which usernames exist. Hashing runs in a worker thread: it takes tens
of milliseconds of CPU on purpose, and the event loop must not wait for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.api.roles import Role
from hub.storage.sqlitedb import SqliteDatabase, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    team TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    password_changed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    issued_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (username);
"""

_USER_COLUMNS = "username, role, team, disabled, created_ms, updated_ms, password_changed_ms"
#: Usernames: lower case, so "Admin" and "admin" cannot be two people. "system" names the hub itself in the audit log.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
RESERVED_USERNAMES = frozenset({"system", "anonymous"})
_REVOKE_ALL = "UPDATE tokens SET revoked_ms = ? WHERE username = ? AND revoked_ms IS NULL"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A user as stored, without the password hash."""

    username: str
    role: Role
    team: str | None
    disabled: bool
    created_ms: int
    updated_ms: int
    password_changed_ms: int

    def as_dict(self) -> dict[str, Any]:
        """The user as the API shows it."""
        return {
            "username": self.username,
            "role": self.role.value,
            "team": self.team,
            "disabled": self.disabled,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "password_changed_ms": self.password_changed_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """A new access token: the only time its value exists outside the client."""

    value: str
    username: str
    expires_ms: int


def _user(row: tuple[Any, ...]) -> User:
    username, role, team, disabled, created, updated, changed = row
    return User(
        username=username,
        role=Role(role),
        team=team,
        disabled=bool(disabled),
        created_ms=created,
        updated_ms=updated,
        password_changed_ms=changed,
    )


def token_digest(token: str) -> str:
    """How a token is stored: a fast hash suffices, the token itself has 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """Users and tokens in one SQLite file (mode 0600)."""

    def __init__(
        self, path: Path, *, hasher: PasswordHasher | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._db = SqliteDatabase(path, _SCHEMA, private=True)
        self._clock = clock
        self._dummy_hash = ""

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def open(self) -> None:
        """Create or open the file, readable by the hub's user only."""
        await self._db.open()
        await self._db.run(lambda conn: conn.execute("PRAGMA foreign_keys = ON"))
        self._dummy_hash = await asyncio.to_thread(self.hasher.hash, secrets.token_urlsafe(16))

    async def aclose(self) -> None:
        """Close the file."""
        await self._db.aclose()

    async def count(self) -> int:
        """How many users exist."""
        row = await self._db.run(lambda conn: conn.execute("SELECT count(*) FROM users").fetchone())
        return int(row[0])

    async def get(self, username: str) -> User | None:
        """The user, if any."""
        sql = f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?"
        row = await self._db.run(lambda conn: conn.execute(sql, (username,)).fetchone())
        return _user(row) if row else None

    async def all(self) -> list[User]:
        """Every user, by name."""
        sql = f"SELECT {_USER_COLUMNS} FROM users ORDER BY username"
        return [_user(row) for row in await self._db.run(lambda conn: conn.execute(sql).fetchall())]

    async def count_admins(self) -> int:
        """Enabled administrators: the API refuses to remove the last one."""
        sql = "SELECT count(*) FROM users WHERE role = ? AND disabled = 0"
        row = await self._db.run(lambda conn: conn.execute(sql, (Role.ADMIN.value,)).fetchone())
        return int(row[0])

    async def create(self, username: str, password: str, role: Role, team: str | None) -> User | None:
        """Add a user; None if the name is taken."""
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        now = self._now_ms()

        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO users (username, password_hash, role, team, disabled, created_ms, updated_ms, "
                "password_changed_ms) VALUES (?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (username, password_hash, role.value, team, now, now, now),
            )
            return cursor.rowcount == 1

        return await self.get(username) if await self._db.run(insert) else None

    async def update(
        self,
        username: str,
        *,
        role: Role | None = None,
        team: str | EllipsisType | None = ...,
        disabled: bool | None = None,
    ) -> User | None:
        """Change role, team or disabled flag (None, or ``...`` for team: unchanged); disabling revokes tokens."""
        user = await self.get(username)
        if user is None:
            return None
        new_role, new_team = role or user.role, user.team if isinstance(team, EllipsisType) else team
        new_disabled = user.disabled if disabled is None else disabled

        now = self._now_ms()

        def change(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE users SET role = ?, team = ?, disabled = ?, updated_ms = ? WHERE username = ?",
                (new_role.value, new_team, int(new_disabled), now, username),
            )
            if new_disabled:
                conn.execute(_REVOKE_ALL, (now, username))

        await self._db.run(lambda conn: transaction(conn, change))
        return await self.get(username)

    async def delete(self, username: str) -> bool:
        """Remove a user and their tokens; False if there was none."""
        cursor = await self._db.run(lambda conn: conn.execute("DELETE FROM users WHERE username = ?", (username,)))
        return cursor.rowcount == 1

    async def set_password(self, username: str, password: str) -> bool:
        """Store a new password hash and revoke every token of the user; False if there is no such user."""
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        now = self._now_ms()

        def change(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_ms = ?, updated_ms = ? WHERE username = ?",
                (password_hash, now, now, username),
            )
            conn.execute(_REVOKE_ALL, (now, username))
            return cursor.rowcount == 1

        return await self._db.run(lambda conn: transaction(conn, change))

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is theirs and they are enabled; same work whether or not they exist."""
        sql = f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = ?"
        row = await self._db.run(lambda conn: conn.execute(sql, (username,)).fetchone())
        stored = row[-1] if row else self._dummy_hash
        if not await asyncio.to_thread(self._verify, stored, password) or row is None:
            return None
        user = _user(row[:-1])
        if user.disabled:
            return None
        if self.hasher.check_needs_rehash(stored):
            await self._rehash(username, stored, password)
        return user

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _rehash(self, username: str, old_hash: str, password: str) -> None:
        new_hash = await asyncio.to_thread(self.hasher.hash, password)
        # Only if unchanged meanwhile: a password change between verify and here wins.
        sql = "UPDATE users SET password_hash = ? WHERE username = ? AND password_hash = ?"
        await self._db.run(lambda conn: conn.execute(sql, (new_hash, username, old_hash)))

    async def verify_password(self, username: str, password: str) -> bool:
        """Whether ``password`` is the user's current one (for a password change)."""
        return await self.authenticate(username, password) is not None

    async def issue_token(self, username: str, ttl_s: int) -> IssuedToken:
        """A new access token for ``username``, valid ``ttl_s`` seconds; expired tokens are purged meanwhile."""
        value = secrets.token_urlsafe(32)
        now = self._now_ms()
        expires = now + ttl_s * 1000

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tokens WHERE expires_ms < ?", (now,))
            conn.execute(
                "INSERT INTO tokens (token_hash, username, issued_ms, expires_ms) VALUES (?, ?, ?, ?)",
                (token_digest(value), username, now, expires),
            )

        await self._db.run(lambda conn: transaction(conn, insert))
        return IssuedToken(value=value, username=username, expires_ms=expires)

    async def resolve_token(self, token: str) -> User | None:
        """The enabled user a live (unexpired, unrevoked) token belongs to, else None."""
        sql = (
            f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))} FROM tokens t "
            "JOIN users u ON u.username = t.username "
            "WHERE t.token_hash = ? AND t.revoked_ms IS NULL AND t.expires_ms > ? AND u.disabled = 0"
        )
        params = (token_digest(token), self._now_ms())
        row = await self._db.run(lambda conn: conn.execute(sql, params).fetchone())
        return _user(row) if row else None

    async def revoke_token(self, token: str) -> bool:
        """Revoke one token (logout); False if it was unknown or already revoked."""
        sql = "UPDATE tokens SET revoked_ms = ? WHERE token_hash = ? AND revoked_ms IS NULL"
        params = (self._now_ms(), token_digest(token))
        cursor = await self._db.run(lambda conn: conn.execute(sql, params))
        return cursor.rowcount == 1

    async def revoke_all(self, username: str) -> int:
        """Revoke every live token of a user; how many there were."""
        params = (self._now_ms(), username)
        cursor = await self._db.run(lambda conn: conn.execute(_REVOKE_ALL, params))
        return int(cursor.rowcount)
