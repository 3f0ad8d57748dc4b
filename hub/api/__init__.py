"""The hub's HTTP interface: health and Prometheus metrics (the REST API grows here)."""
