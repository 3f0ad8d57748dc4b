"""The console's static files, served from the package: gzip, ETags and cache headers, computed once.

The files are few and small (tens of kilobytes), so each is read and compressed once at start and served
from memory. ``index.html`` names the other files as ``app.js?v=<hash>``: the page itself is revalidated
on every load (``no-cache`` and its ETag, a 304 in the usual case), the files it names are cached for a
year, since a new version has a new URL. Nothing comes from outside: no CDN, no font, no build step.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from hub.api.errors import ApiError

#: What the console's files are (by suffix); anything else in the folder is not served.
MEDIA_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
#: The page may load only its own files and talk only to its own origin (the API); it may not be framed.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
#: Below this, gzip's header costs more than it saves.
_GZIP_MIN_BYTES = 512
_VERSIONED = re.compile(r'(?P<attr>(?:src|href)=")(?P<path>[a-z0-9_./-]+\.(?:js|css|svg))"')


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One file as served: its bytes, their gzip, its ETag, type and cache policy."""

    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str
    cache_control: str

    @classmethod
    def of(cls, body: bytes, media_type: str, cache_control: str) -> Asset:
        """The asset for ``body``, compressed when that saves bytes."""
        packed = gzip.compress(body, compresslevel=9, mtime=0) if len(body) >= _GZIP_MIN_BYTES else None
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        return cls(body=body, gzipped=packed, etag=etag, media_type=media_type, cache_control=cache_control)


def _files(root: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in root.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_files(entry, f"{name}/"))
        elif any(name.endswith(suffix) for suffix in MEDIA_TYPES):
            found[name] = entry.read_bytes()
    return found


def load_assets(root: Traversable | None = None) -> dict[str, Asset]:
    """The console's files by path (``index.html``, ``app.js``, ``i18n/ro.json``...), ready to serve."""
    files = _files(root or resources.files("hub.console") / "static")
    assets = {
        name: Asset.of(body, MEDIA_TYPES["." + name.rsplit(".", 1)[1]], _IMMUTABLE)
        for name, body in files.items()
        if name != "index.html"
    }

    def versioned(match: re.Match[str]) -> str:
        asset = assets.get(match["path"])
        return match[0] if asset is None else f'{match["attr"]}{match["path"]}?v={asset.etag.strip(chr(34))[:12]}"'

    page = _VERSIONED.sub(versioned, files["index.html"].decode("utf-8")).encode("utf-8")
    assets["index.html"] = Asset.of(page, MEDIA_TYPES[".html"], _REVALIDATE)
    # The dictionaries are fetched by name at run time (not from index.html): revalidate them like the page.
    for name, asset in assets.items():
        if name.startswith("i18n/"):
            assets[name] = Asset.of(asset.body, asset.media_type, _REVALIDATE)
    return assets


def _accepts_gzip(request: Request) -> bool:
    return any(part.split(";")[0].strip() == "gzip" for part in request.headers.get("accept-encoding", "").split(","))


def serve(asset: Asset, request: Request) -> Response:
    """The asset as a response: 304 when the client has it, gzip when it accepts it."""
    headers = {
        **SECURITY_HEADERS,
        "ETag": asset.etag,
        "Cache-Control": asset.cache_control,
        "Vary": "Accept-Encoding",
    }
    if asset.etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and _accepts_gzip(request):
        return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def console_router(assets: Mapping[str, Asset]) -> APIRouter:
    """``/console/`` and its files: public, since every piece of data comes from the API, behind its login."""
    router = APIRouter(tags=["console"], include_in_schema=False)

    @router.get("/console")
    async def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    @router.get("/console/")
    async def console_page(request: Request) -> Response:
        return serve(assets["index.html"], request)

    @router.get("/console/{path:path}")
    async def console_file(path: str, request: Request) -> Response:
        # A lookup in the table of shipped files: no path from the request ever reaches the file system.
        asset = assets.get(path)
        if asset is None:
            raise ApiError(404, "not_found", "no such console file")
        return serve(asset, request)

    return router
