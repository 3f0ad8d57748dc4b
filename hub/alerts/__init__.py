"""Alerts in the hub: the rules run on every accepted message and on the clock; the lifecycle and notifications."""
