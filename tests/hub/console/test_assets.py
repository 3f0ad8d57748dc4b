"""The console's files as a browser on a slow link gets them from a running hub, and its two dictionaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from hub.console.assets import load_assets

from .conftest import ConsoleHub

STATIC = Path(__file__).parents[3] / "hub" / "console" / "static"
#: Keys built at run time from data (role.<role>, state.<state>, ...): each family must cover these values.
FAMILIES = {
    "role": ["admin", "it_operator", "police_operator", "adp_operator", "viewer"],
    "state": ["firing", "acknowledged", "resolved"],
    "severity": ["critical", "major", "minor", "warning", "info"],
    "devices.state": ["online", "offline", "unknown"],
    "actions": ["ack", "comment", "resolve"],
}


def dictionary(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def test_romanian_and_english_have_the_same_keys_and_every_key_the_page_uses() -> None:
    ro, en = dictionary("ro"), dictionary("en")
    assert sorted(ro) == sorted(en)
    assert all(value.strip() for value in [*ro.values(), *en.values()])
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = "".join((STATIC / name).read_text(encoding="utf-8") for name in ("app.js", "devices.js", "reports.js"))
    used = set(re.findall(r'data-i18n="([^"]+)"', html)) | set(re.findall(r'\bt\("([a-z_.]+)"', scripts))
    used |= {f"{family}.{value}" for family, values in FAMILIES.items() for value in values}
    assert used - set(en) == set()
    # Placeholders are the same in both languages ({subject} in one and not the other would show raw).
    for key in en:
        assert set(re.findall(r"\{\w+\}", ro[key])) == set(re.findall(r"\{\w+\}", en[key])), key


async def test_page_is_gzipped_revalidated_and_names_its_files_by_version(console_hub: ConsoleHub) -> None:
    async with httpx.AsyncClient(base_url=console_hub.base_url, timeout=10) as client:
        moved = await client.get("/console")
        assert (moved.status_code, moved.headers["location"]) == (308, "/console/")
        page = await client.get("/console/", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200
        assert page.headers["content-encoding"] == "gzip"
        assert page.num_bytes_downloaded < len(page.content)
        assert page.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "cdn" not in page.text.lower()
        assert not re.search(r'(src|href)="(https?:)?//', page.text)  # nothing from outside: works offline
        again = await client.get("/console/", headers={"If-None-Match": page.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        names = re.findall(r'(?:src|href)="([a-z]+\.(?:js|css)\?v=[0-9a-f]{12})"', page.text)
        assert sorted(n.split("?")[0] for n in names) == ["app.js", "devices.js", "reports.js", "style.css"]
        script = await client.get(f"/console/{names[0]}", headers={"Accept-Encoding": "identity"})
        assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "content-encoding" not in script.headers
        assert script.headers["content-type"].startswith(("text/javascript", "text/css"))
        total = sum(len(a.gzipped if a.gzipped is not None else a.body) for a in load_assets().values())
        assert total < 40_000, f"the console weighs {total} bytes compressed"


@pytest.mark.parametrize("path", ["/console/nothing.js", "/console/../pyproject.toml", "/console/i18n/../app.py"])
async def test_only_shipped_files_are_served(console_hub: ConsoleHub, path: str) -> None:
    async with httpx.AsyncClient(base_url=console_hub.base_url, timeout=10) as client:
        answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_static_files_are_public_but_the_data_is_not(console_hub: ConsoleHub) -> None:
    async with httpx.AsyncClient(base_url=console_hub.base_url, timeout=10) as client:
        assert (await client.get("/console/i18n/ro.json")).json()["alerts.title"] == "Alerte"
        for path in ("/api/v1/me", "/api/v1/alerts", "/api/v1/devices", "/api/v1/alerts/stream"):
            refused = await client.get(path)
            assert refused.status_code == 401, path
