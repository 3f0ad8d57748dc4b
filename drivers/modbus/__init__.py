"""Modbus TCP and RTU driver (pymodbus)."""
