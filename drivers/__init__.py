"""Device drivers: one package per protocol, each implementing the same small async interface."""
