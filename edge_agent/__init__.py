"""The edge agent: polls field devices and publishes through the MQTT contract (see the edge agent issue)."""
