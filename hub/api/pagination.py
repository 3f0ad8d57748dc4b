"""The one shape of every paginated list: ``?limit=&offset=`` in, ``{"items": [...], "next_offset": n}`` out.

``next_offset`` is the ``offset`` of the next page, null on the last one. Filters are plain query
parameters named after the field they match (``site``, ``kind``, ``state``, ...). The audit log, which
only grows, also takes the cursor ``after`` (an entry id) and answers ``next_after`` (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"items per page, 1 to {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip: the previous page's next_offset")]


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    next_offset: int | None


def page(items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    """The page of ``items`` (all of them, in order) at ``offset``."""
    end = offset + limit
    return {"items": list(items[offset:end]), "next_offset": end if len(items) > end else None}


def fetched_page(fetched: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    """The page from a store asked for ``limit + 1`` items at ``offset``: the extra one only says there is more."""
    return {"items": list(fetched[:limit]), "next_offset": offset + limit if len(fetched) > limit else None}
