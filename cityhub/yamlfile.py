"""Reading the YAML files people write (configurations, profiles, scenarios) strictly, with errors that
name the file and the field.

PyYAML's ``safe_load`` keeps the last of two equal keys silently: a second ``devices:`` block would
replace the first without a word. These files are edited by hand for years, so a duplicate key is an
error that names its line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping with the same key twice."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"key {key!r} appears twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, refusing duplicate keys (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def read_text(path: Path, error: type[Exception], *, what: str, shipped: Iterable[str]) -> str:
    """A data file's UTF-8 text, or ``error`` naming the file, why, and the ``shipped`` files of its kind."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror}); shipped {what}s: {', '.join(shipped)}") from None


def describe_errors(path: Path, data: Any, exc: ValidationError, named: Mapping[str, tuple[str, str]]) -> str:
    """One line per validation error, naming the file and the field.

    ``named`` maps a list field to how its items are known: ``{"points": ("point", "metric")}`` turns
    ``points.3.scale`` into ``point 'battery.charge'.scale``, since people know points by metric, not index.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        where = ".".join(str(part) for part in loc) or "(top level)"
        if len(loc) >= 2 and loc[0] in named and isinstance(loc[1], int):
            label, key = named[str(loc[0])]
            with contextlib.suppress(KeyError, IndexError, TypeError):
                where = f"{label} {data[loc[0]][loc[1]][key]!r}" + "".join(f".{part}" for part in loc[2:])
        lines.append(f"{path}: {where}: {error['msg']}")
    return "\n".join(lines)
