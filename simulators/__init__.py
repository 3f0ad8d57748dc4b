"""Simulators of every device kind, speaking the cityhub contract over real sockets."""
