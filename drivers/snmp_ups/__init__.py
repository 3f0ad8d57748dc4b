"""UPS over SNMP driver (pysnmp)."""
