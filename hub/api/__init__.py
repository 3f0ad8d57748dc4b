"""The hub's REST API: authentication, roles and team scopes, user administration, the audit log.

Wiring (hub.service): ``HubApi.in_dir(settings.api, data_dir, devices=...)``, ``await api.open()``,
``build_api(app, api, routers=[...])``; docs/api-security.md describes the security model.
"""

from hub.api.app import build_api
from hub.api.context import HubApi
from hub.api.settings import ApiSettings
from hub.devices import DeviceSource

__all__ = ["ApiSettings", "DeviceSource", "HubApi", "build_api"]
