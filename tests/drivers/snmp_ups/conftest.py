"""Fixtures of the SNMP UPS driver tests, shared with the simulator's (tests/snmpkit.py)."""

from snmpkit import client, no_leaked_tasks, start_agent, start_listener

__all__ = ["client", "no_leaked_tasks", "start_agent", "start_listener"]
