"""Durations as people write them in configuration and rule files: ``90s``, ``15m``, ``1h``, ``1d``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def seconds(value: object) -> object:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"`` or a plain number, as seconds; anything else left to pydantic."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 90s, 15m, 1h, 1d)")
        return float(match.group(1)) * _UNIT_S[match.group(2)]
    return value


#: A duration field of a pydantic model, in seconds.
Duration = Annotated[float, BeforeValidator(seconds), Field(ge=0)]
