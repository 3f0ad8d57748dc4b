"""The one place onvif-zeep-async is imported, so its import-time side effect is undone once.

``onvif/client.py`` calls ``logging.basicConfig(level=logging.INFO)`` when imported: a root handler at
INFO in whatever process imports it, which would also turn the agent's own ``basicConfig`` into a no-op.
Library code configures no handlers, so the handler and level it adds are removed again here.
"""

from __future__ import annotations

import logging

_root = logging.getLogger()
_handlers, _level = list(_root.handlers), _root.level

from onvif import ONVIFCamera  # noqa: E402
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError  # noqa: E402
from onvif.util import normalize_url  # noqa: E402

for _handler in [h for h in _root.handlers if h not in _handlers]:
    _root.removeHandler(_handler)
_root.setLevel(_level)

__all__ = ["ONVIFAuthError", "ONVIFCamera", "ONVIFError", "ONVIFTimeoutError", "normalize_url"]
