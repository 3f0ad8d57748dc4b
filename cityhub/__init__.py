"""cityhub: shared code of the platform (the MQTT contract, the MQTT session, the command line)."""
