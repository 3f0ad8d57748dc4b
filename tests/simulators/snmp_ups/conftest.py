"""Fixtures of the SNMP UPS simulator tests, shared with the driver's (tests/snmpkit.py)."""

from snmpkit import client, no_leaked_tasks, start_agent, start_listener

__all__ = ["client", "no_leaked_tasks", "start_agent", "start_listener"]
