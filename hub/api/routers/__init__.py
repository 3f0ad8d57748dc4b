"""One router per resource, each mounted under ``/api/v1`` by hub.api.app.build_api."""
