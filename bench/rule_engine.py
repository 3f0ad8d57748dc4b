"""The rule engine alone: the bench's 100 rules against none, on the same stream, in one process.

Run ``.venv/bin/python bench/rule_engine.py`` (``--help`` for the knobs).

The stream is bench/ingest.py's workload (50 devices of kind ``bench_sensor``, 10 readings per message),
decoded once into the engine's observations; the rules are bench/alert_latency.py's 100 (60 thresholds
with hysteresis, 20 rates of change, 10 staleness checks, 10 ``any`` combinations), none of which fires.
Rounds alternate between the empty rule set and the 100 rules; each round feeds the whole stream through
a fresh engine on a simulated clock. It isolates what bench/alert_latency.py's ingest ratio pays for the
rules from the broker, the store and the event loop.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import benchlib
from alert_latency import rule_file
from benchlib import median, num
from ingest import make_workload

from cityhub.contract import TelemetryMessage
from cityhub.replay.observations import observations_from
from hub.alerts.config import AlertsConfig
from rules.engine import RuleEngine
from rules.loader import load_rules
from rules.model import Observation
from rules.spec import Rule


def stream(messages: int) -> list[list[Observation]]:
    """The workload's messages as the engine sees them, one list of readings per message."""
    workload = make_workload(messages, 50, 10)
    return [observations_from(TelemetryMessage.model_validate_json(body)) for _, body in workload.messages]


def one_round(rules: Sequence[Rule], observations: list[list[Observation]]) -> float:
    """Seconds to feed the stream through a fresh engine, a millisecond of simulated time per message."""
    engine = RuleEngine(rules)
    now = 1_000_000
    started = time.perf_counter()
    for message in observations:
        now += 1
        engine.observe_all(message, now)
    return time.perf_counter() - started


def run(args: argparse.Namespace, workdir: Path) -> None:
    observations = stream(args.messages)
    hundred = load_rules([rule_file(workdir / "hundred.yaml", 100, False)], AlertsConfig().teams)
    times: dict[str, list[float]] = {"0": [], "100": []}
    for r in range(args.rounds):
        for name, rules in (("0", []), ("100", hundred)) if r % 2 == 0 else (("100", hundred), ("0", [])):
            times[name].append(one_round(rules, observations))
    per_msg = {name: median(t) / len(observations) * 1e6 for name, t in times.items()}
    print(f"rule engine, {len(observations)} msgs x 10 readings, medians of {args.rounds} rounds:")
    print(f"  rules=0    {num(per_msg['0'], 1):>8} us/msg")
    print(f"  rules=100  {num(per_msg['100'], 1):>8} us/msg")
    print(f"  the 100 rules cost {num(per_msg['100'] - per_msg['0'], 1)} us per message "
          f"(ratio 0/100 = {per_msg['0'] / per_msg['100']:.2f})")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the rule file here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    benchlib.main(parse_args, run)
