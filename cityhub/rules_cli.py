"""``cityhub rules`` (check rule files; replay a recording through them) and ``cityhub record``.

``cityhub rules test --recording FILE`` prints the alert timeline the rules give on that stream with a
simulated clock; ``--golden FILE`` compares it with an expected timeline (exit 1 and a diff when they
differ), ``--update`` writes it. Golden files are text, one transition per line, for review as a whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from cityhub.replay.recording import RecordingError, read_recording, record
from cityhub.replay.replay import replay
from rules.errors import RuleError
from rules.loader import DEFAULT_TEAMS, PACKS_DIR, load_rules
from rules.spec import Rule


def add_rules_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub rules``."""
    actions = parser.add_subparsers(dest="rules_action", required=True)
    check = actions.add_parser("check", help="validate rule files (the shipped packs without arguments)")
    check.add_argument("paths", nargs="*", type=Path, help="rule files or folders of them")
    check.add_argument("--teams", default=",".join(DEFAULT_TEAMS), help="the configured teams, comma-separated")
    test = actions.add_parser("test", help="replay a recording through the rules with a simulated clock")
    test.add_argument("--recording", type=Path, required=True, help="a file written by `cityhub record`")
    test.add_argument("--rules", type=Path, action="append", help="rule files or folders (default: the packs)")
    test.add_argument("--teams", default=",".join(DEFAULT_TEAMS), help="the configured teams, comma-separated")
    test.add_argument("--topic-root", help="the recording's topic root (default: read from its first message)")
    test.add_argument("--speed", type=float, default=1.0, help="how much faster than real time it was recorded")
    test.add_argument("--until", type=float, help="run the clock this many (scaled) seconds after the start")
    test.add_argument("--tag", action="append", default=[], metavar="SITE/DEVICE=TAG[,TAG]", help="device tags")
    test.add_argument("--golden", type=Path, help="compare the timeline with this file")
    test.add_argument("--update", action="store_true", help="write the timeline into --golden instead")


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub record``."""
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--topic-root", default="cityhub")
    parser.add_argument("--protocol", type=int, choices=(4, 5), default=5)
    parser.add_argument("--out", type=Path, required=True, help="the recording (JSON Lines), appended to")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")


def run_rules(args: argparse.Namespace) -> int:
    """``cityhub rules check|test``."""
    teams = [t.strip() for t in args.teams.split(",") if t.strip()]
    try:
        if args.rules_action == "check":
            rules = load_rules(args.paths or [PACKS_DIR], teams)
            print(f"{len(rules)} rules, valid")
            return 0
        return _test(args, load_rules(args.rules or [PACKS_DIR], teams))
    except RuleError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (RecordingError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _tags(specs: list[str]) -> dict[tuple[str, str], frozenset[str]]:
    tags = {}
    for spec in specs:
        device, _, names = spec.partition("=")
        site, _, dev = device.partition("/")
        if not (site and dev and names):
            raise SystemExit(f"error: --tag {spec!r}: expected SITE/DEVICE=TAG[,TAG]")
        tags[(site, dev)] = frozenset(n.strip() for n in names.split(",") if n.strip())
    return tags


def _test(args: argparse.Namespace, rules: Sequence[Rule]) -> int:
    result = replay(
        read_recording(args.recording), rules, tags=_tags(args.tag), topic_root=args.topic_root,
        speed=args.speed, until_s=args.until,
    )  # fmt: skip
    lines = result.timeline()
    rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(result.rejected.items())) or "none"
    print(f"# {result.messages} messages replayed, rejected: {rejected}; {len(lines)} transitions", file=sys.stderr)
    text = "".join(line + "\n" for line in lines)
    if args.golden is None:
        sys.stdout.write(text)
        return 0
    if args.update:
        args.golden.write_text(text, encoding="utf-8")
        print(f"wrote {args.golden}", file=sys.stderr)
        return 0
    expected = args.golden.read_text(encoding="utf-8")
    if expected == text:
        print(f"timeline matches {args.golden}", file=sys.stderr)
        return 0
    sys.stdout.writelines(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "replay"))
    return 1


def run_record(args: argparse.Namespace) -> int:
    """``cityhub record``: write live device traffic to a file until Ctrl-C or ``--duration``."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)
        with args.out.open("a", encoding="utf-8") as out:
            count = await record(args.mqtt_url, out, topic_root=args.topic_root, stop=stop, protocol=args.protocol)
        print(f"recorded {count} messages into {args.out}", file=sys.stderr)
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 130
