"""``cityhub registrations``: list, approve, reject and revoke device registrations through the hub's API.

The command talks to the API like the console does, so the same login, roles, team scoping and audit
apply (docs/api-security.md). The password comes from ``$CITYHUB_PASSWORD`` or a prompt, never the
command line (where other users of the machine could read it).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

import httpx


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub registrations``."""
    parser.add_argument("--hub", default="http://127.0.0.1:8080", help="the hub's API (http://127.0.0.1:8080)")
    parser.add_argument("--user", default=os.environ.get("CITYHUB_USER"), help="your login ($CITYHUB_USER)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="requests waiting for a decision (--all: every registration)")
    listing.add_argument("--all", action="store_true")
    for name, text in (
        ("show", "one registration and its history"),
        ("approve", "approve a waiting request: the device gets its broker login"),
        ("reject", "reject a waiting request"),
        ("revoke", "revoke an approved device: its login is disabled, its session dropped"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("device", metavar="SITE/DEVICE")
        if name in ("reject", "revoke"):
            action.add_argument("--reason", help="told to the device and kept in the history")


def _token(client: httpx.Client, user: str | None) -> str:
    if not user:
        raise SystemExit("cityhub registrations: give --user (or set CITYHUB_USER)")
    password = os.environ.get("CITYHUB_PASSWORD") or getpass.getpass(f"password for {user}: ")
    answer = client.post("/api/v1/auth/token", data={"username": user, "password": password})
    if answer.status_code != 200:
        raise SystemExit(f"cityhub registrations: login refused ({_error(answer)})")
    token: str = answer.json()["access_token"]
    return token


def _error(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}"


def _table(entries: list[dict[str, Any]]) -> str:
    rows = [("SITE/DEVICE", "KIND", "STATE", "WAITING", "REQUESTED BY", "DECIDED BY")]
    rows += [
        (
            f"{e['site']}/{e['device']}",
            e["kind"],
            e["state"],
            "yes" if e["awaiting_decision"] else "",
            e["provisioning_key"],
            e.get("decided_by") or "",
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _listing(client: httpx.Client, waiting: bool) -> httpx.Response:
    """Every page of the list, folded into the last answer (so errors and the JSON output stay as they were)."""
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        answer = client.get("/api/v1/registrations", params={"waiting": waiting, "limit": 1000, "offset": offset})
        if answer.status_code >= 400:
            return answer
        body = answer.json()
        items += body["items"]
        offset = body["next_offset"]
    return httpx.Response(200, json=items, request=answer.request)


def _call(client: httpx.Client, args: argparse.Namespace) -> httpx.Response:
    if args.action == "list":
        return _listing(client, waiting=not args.all)
    site, _, device = args.device.partition("/")
    if not site or not device:
        raise SystemExit("cityhub registrations: name the device as SITE/DEVICE")
    path = f"/api/v1/registrations/{site}/{device}"
    if args.action == "show":
        return client.get(path)
    body = {"reason": args.reason} if getattr(args, "reason", None) else None
    return client.post(f"{path}/{args.action}", json=body)


def run(args: argparse.Namespace) -> int:
    """Log in, do the action, print the result; 0 on success, 1 when the hub refused."""
    with httpx.Client(base_url=args.hub, timeout=15) as client:
        try:
            client.headers["Authorization"] = f"Bearer {_token(client, args.user)}"
            answer = _call(client, args)
        except httpx.HTTPError as exc:
            print(f"cityhub registrations: cannot reach the hub at {args.hub}: {exc}", file=sys.stderr)
            return 1
    if answer.status_code >= 400:
        print(f"cityhub registrations: {_error(answer)}", file=sys.stderr)
        return 1
    body = answer.json()
    if args.json or args.action == "show":
        print(json.dumps(body, indent=2, ensure_ascii=False))
    elif args.action == "list":
        print(_table(body))
    else:
        print(f"{body['site']}/{body['device']}: {body['state']}")
    return 0
