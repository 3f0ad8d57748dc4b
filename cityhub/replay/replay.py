"""Replaying a stream of device messages through the rules with a simulated clock.

The clock is the messages' arrival times (a recording's ``t``), scaled by ``speed`` when the stream
was played faster than real time; between two messages the engine is ticked at each of its deadlines,
so ``for`` windows, staleness and missed heartbeats fire at the instant they would have live. The
result is the alert timeline, in a text form made for golden files and for people.

What replay does not see: statuses the hub declares itself (devices behind an agent that went offline
are marked offline by the hub, not by a message) and the hub's duplicate filtering (the rules ignore
a repeated message anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cityhub.contract import Limits, RejectedMessage, Topics, validate_message
from cityhub.replay.observations import observations_from
from cityhub.replay.recording import Record
from rules.engine import RuleEngine
from rules.model import Transition
from rules.spec import Rule


@dataclass(slots=True)
class ReplayResult:
    """The transitions of a replay, with times relative to the stream's start (ms, scaled)."""

    start_ms: int
    transitions: list[Transition] = field(default_factory=list)
    messages: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def timeline(self) -> list[str]:
        """One line per transition: ``+SECONDS STATE RULE SITE/DEVICE SEVERITY TEAM``."""
        return [timeline_line(t, self.start_ms) for t in self.transitions]


def timeline_line(transition: Transition, start_ms: int) -> str:
    """A transition as a golden file holds it (whole seconds: what a person compares)."""
    t = transition
    return format_line((t.at_ms - start_ms) / 1000, t.state.value, t.rule, t.subject.key, t.severity.value, t.team)


def format_line(seconds: float, state: str, rule: str, subject: str, severity: str, team: str) -> str:
    """``+SECONDS STATE RULE SITE/DEVICE SEVERITY TEAM``, aligned."""
    return f"+{round(seconds):>5}s  {state:<8}  {rule:<34}  {subject:<28}  {severity:<8}  {team}".rstrip()


def replay(
    records: Iterable[Record],
    rules: Sequence[Rule],
    *,
    tags: Mapping[tuple[str, str], frozenset[str]] | None = None,
    topic_root: str | None = None,
    speed: float = 1.0,
    until_s: float | None = None,
) -> ReplayResult:
    """Run ``records`` through ``rules``; ``until_s`` (scaled seconds after the start) keeps the clock going.

    Without ``topic_root``, the root is the first record's (what precedes ``/v1/`` in its topic).
    """
    engine = RuleEngine(rules, tags)
    topics: Topics | None = None if topic_root is None else Topics(root=topic_root)
    # Timestamps are checked against the arrival time, so old recordings replay as they were received.
    limits = Limits()
    result: ReplayResult | None = None
    first_ms = 0
    for rec in records:
        if result is None:
            first_ms, result = rec.t_ms, ReplayResult(start_ms=rec.t_ms)
        if topics is None:
            topics = Topics(root=rec.topic.split("/v1/", 1)[0])
        now = first_ms + round((rec.t_ms - first_ms) * speed)
        _advance(engine, result, now)
        try:
            valid = validate_message(topics, rec.topic, rec.payload, now_ms=rec.t_ms, limits=limits)
        except RejectedMessage as exc:
            result.rejected[exc.reason.value] = result.rejected.get(exc.reason.value, 0) + 1
            continue
        result.messages += 1
        result.transitions += engine.observe_all(observations_from(valid.message), now)
    if result is None:
        return ReplayResult(start_ms=0)
    if until_s is not None:
        _advance(engine, result, first_ms + round(until_s * 1000))
    return result


def _advance(engine: RuleEngine, result: ReplayResult, now_ms: int) -> None:
    while (due := engine.next_deadline()) is not None and due <= now_ms:
        result.transitions += engine.tick(due)
