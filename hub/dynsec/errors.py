"""Errors of the dynamic security client.

    HubError (hub.errors)
    └── DynSecError                 anything that went wrong talking to the dynamic security plugin
        ├── DynSecUnavailable       retry later: the broker cannot be reached or refused the admin login
        │   └── DynSecTimeout       no answer to a command in time (it may still have been applied;
        │                           every high-level operation is idempotent, so repeating it is safe)
        └── CommandFailed           the plugin answered with an error (``command``, ``error``)
            ├── NotFound            "Client not found", "Role not found", "Role does not exist", ...
            └── AlreadyExists       "Client already exists", "Role already exists", ...

Invalid names and passwords are refused before anything is sent, with ``ValueError``.
paho-mqtt's errors (through ``cityhub.mqtt.MqttError``) are mapped to these once, in ``client.py``;
the plugin's error strings are mapped once, in :func:`command_failed`.
"""

from __future__ import annotations

from hub.errors import HubError


class DynSecError(HubError):
    """Base of every error of the dynamic security client."""


class DynSecUnavailable(DynSecError):
    """The broker cannot be reached, or it refused the admin login; the call may succeed later."""


class DynSecTimeout(DynSecUnavailable):
    """The plugin did not answer in time; the command may or may not have been applied."""


class CommandFailed(DynSecError):
    """The plugin refused a command; ``error`` is its message, verbatim."""

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynamic security command {command} failed: {error}")
        self.command = command
        self.error = error


class NotFound(CommandFailed):
    """The client, role, group or ACL the command names does not exist."""


class AlreadyExists(CommandFailed):
    """The client, role, group or ACL the command creates exists already."""


def command_failed(command: str, error: str) -> CommandFailed:
    """The typed exception for an error string of the plugin (mosquitto 2.0 wording)."""
    # The plugin reports errors as free text only; the strings come from plugins/dynamic-security/*.c
    # (e.g. "Client not found" in clients.c, "Role does not exist" in roles.c' modifyRole).
    lowered = error.lower()
    if "not found" in lowered or "does not exist" in lowered:
        return NotFound(command, error)
    if "already exists" in lowered:
        return AlreadyExists(command, error)
    return CommandFailed(command, error)
