"""The cityhub hub: ingests the MQTT contract's messages, stores time series, serves health and metrics."""
