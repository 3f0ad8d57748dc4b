"""Errors of the hub's HTTP API.

    HubError (hub.errors)
    ├── ConfigError
    │   └── InsecureSettingsError   production settings with default or weak secrets: the hub refuses to start
    └── ApiError                    a request is refused; carries the HTTP status and a stable ``code``
        ├── (401) not_authenticated, invalid_token, invalid_credentials
        ├── (403) forbidden
        ├── (404) not_found        also for a device outside the caller's team, so existence is not revealed
        ├── (409) conflict         e.g. removing the last administrator
        ├── (422) weak_password, invalid_request
        └── (429) rate_limited

Every refusal reaches the client as ``{"error": {"code": ..., "message": ...}}`` (hub.api.app).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.errors import ConfigError, HubError


class InsecureSettingsError(ConfigError):
    """Default or weak secrets in a production configuration; the message lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"refusing to start with default or weak secrets in production:\n{lines}\n"
            "Set strong values (CITYHUB_API_* variables or the YAML file), or api.environment: development for a demo."
        )


class ApiError(HubError):
    """A refused request: HTTP ``status``, a stable machine-readable ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_authenticated(message: str = "authentication required", code: str = "not_authenticated") -> ApiError:
    """401 with the challenge RFC 6750 asks for."""
    return ApiError(401, code, message, {"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    """403: authenticated, but the role lacks the permission."""
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    """404."""
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    """409."""
    return ApiError(409, "conflict", message)
