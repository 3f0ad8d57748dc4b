"""Time-series storage: line protocol, InfluxDB writers (v1 and v2 APIs), the on-disk spool, SQLite."""
