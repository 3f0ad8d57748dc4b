"""Simulated UPS network cards speaking SNMP, built from the driver's MIB profiles."""
