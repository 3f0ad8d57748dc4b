"""The rule engine: observations and the clock in, alert transitions out. Pure: no I/O, no clock of its own.

For each rule and device (a *pair*) the engine keeps whether the condition is pending (true, waiting
out the rule's ``for``) or firing. A pair is evaluated when a message that can change its condition
arrives (rules are indexed by metric and event type, so a reading costs only the rules that read it)
and when one of its deadlines comes (a ``for`` elapsing, staleness, a missed heartbeat): deadlines sit
in a heap, so ``tick`` costs only what is due and ``next_deadline`` tells the caller when to call it.

Time: every ``now_ms`` is the caller's clock (the hub's arrival time, or a replay's simulated clock).
Rate conditions use the device's own timestamps, so network jitter does not fake a rise. The time the
hub was not running does not count toward any timer: ``restore`` shifts them by the downtime, so a
restart neither fires every staleness rule at once nor forgets a ``for`` already half served.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.conditions import Evaluation, EventCondition, Offline, Rate, Stale, number
from rules.index import ReadingPlan, ThresholdIndex, ValueProbe, rate_groups, simple_condition, value_combination_metric
from rules.memory import DeviceMemory, EventRecord, RateWindows
from rules.model import AlertState, BirthIn, EventIn, Observation, ReadingIn, StatusIn, Subject, Transition
from rules.spec import Rule

SNAPSHOT_VERSION = 1
_PairKey = tuple[str, str, str]  # rule id, site, device


@dataclass(slots=True)
class _Pair:
    """One rule's state for one device."""

    pending_ms: int | None = None
    firing: bool = False
    latches: dict[int, bool] = field(default_factory=dict)


class RuleEngine:
    """Evaluates rules against observations and the clock; returns the alerts that start and stop."""

    def __init__(self, rules: Sequence[Rule], tags: Mapping[tuple[str, str], frozenset[str]] | None = None) -> None:
        self._tags = dict(tags or {})
        self._devices: dict[tuple[str, str], DeviceMemory] = {}
        self._pairs: dict[_PairKey, _Pair] = {}
        self._heap: list[tuple[int, str, str, str]] = []
        self._scheduled: dict[_PairKey, int] = {}
        self._selected: dict[tuple[str, str], dict[str, bool]] = {}  # (site, device) -> rule id -> selected
        # (site, device) -> metric -> the rules a reading of it wakes for that device: selection decided once.
        self._plans: dict[tuple[str, str], dict[str, ReadingPlan]] = {}
        # The indexed rules (``_simple``) whose pair is latched, pending or firing, by device and metric:
        # every reading of the metric re-evaluates them, whatever its value.
        self._awake: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._install(rules)

    def _install(self, rules: Sequence[Rule]) -> None:
        self.rules: dict[str, Rule] = {rule.id: rule for rule in rules}
        self._by_metric: dict[str, list[Rule]] = defaultdict(list)
        self._by_event: dict[str, list[Rule]] = defaultdict(list)
        self._event_globs: list[tuple[Rule, EventCondition]] = []
        self._every_message = [rule for rule in rules if rule.on_every_message]
        self._clocked = frozenset(rule.id for rule in rules if rule.clocked)
        self._lazy = frozenset(rule.id for rule in rules if isinstance(rule.when, Stale | Offline))
        windows: dict[str, set[tuple[int, bool]]] = defaultdict(set)
        # single-threshold, single-rate or threshold-and-state combination rule id -> its one metric
        self._simple: dict[str, str] = {}
        self._simple_by_metric: dict[str, list[Rule]] = defaultdict(list)
        self._probes: dict[str, ValueProbe] = {}  # threshold-and-state combination rule id -> its probe
        for rule in rules:
            self._index(rule, windows)
        self._windows = {
            metric: RateWindows(tuple(sorted(keys)), max(window for window, _ in keys))
            for metric, keys in windows.items()
        }
        self._selected.clear()
        self._plans.clear()

    def _index(self, rule: Rule, windows: dict[str, set[tuple[int, bool]]]) -> None:
        """File a rule under what wakes it: its metrics (an index, for a single threshold or rate) and event types."""
        simple = simple_condition(rule)
        indexed = simple.metric if simple is not None else value_combination_metric(rule)
        if indexed is not None:
            self._simple[rule.id] = indexed
            self._simple_by_metric[indexed].append(rule)
            if simple is None:
                self._probes[rule.id] = ValueProbe.of(rule)
        for metric in () if indexed else rule.metrics:  # an indexed rule is woken through its index
            self._by_metric[metric].append(rule)
        for cond in rule.events:
            if cond.is_glob:
                self._event_globs.append((rule, cond))
            else:
                self._by_event[cond.type].append(rule)
        for leaf in rule.when.leaves():
            if isinstance(leaf, Rate):
                windows[leaf.metric].add((leaf.window_ms, leaf.rise))

    # -- input ------------------------------------------------------------------------------------

    def observe(self, observation: Observation, now_ms: int) -> list[Transition]:
        """Take in one observation; return the transitions it causes."""
        return self.observe_all((observation,), now_ms)

    def observe_all(self, observations: Iterable[Observation], now_ms: int) -> list[Transition]:
        """Take in several observations of one moment (a telemetry batch); each rule is evaluated once."""
        touched: dict[tuple[str, str], set[str]] = {}
        for obs in observations:
            memory = self._remember(obs, now_ms)
            rules = touched.setdefault((obs.site, obs.device), set())
            if isinstance(obs, ReadingIn):
                woken = self._woken_by_reading(obs, memory)
                if woken:
                    rules.update(woken)
            else:
                rules.update(rule.id for rule in self._selected_rules(obs, memory))
        transitions: list[Transition] = []
        for (site, device), rule_ids in touched.items():
            for rule_id in sorted(rule_ids):
                self._evaluate(self.rules[rule_id], site, device, now_ms, transitions, selected=True)
        return transitions

    def tick(self, now_ms: int) -> list[Transition]:
        """Evaluate what is due by ``now_ms`` (a ``for`` elapsing, staleness, a missed heartbeat)."""
        transitions: list[Transition] = []
        while self._heap and self._heap[0][0] <= now_ms:
            due, rule_id, site, device = heapq.heappop(self._heap)
            key = (rule_id, site, device)
            if self._scheduled.get(key) != due:
                continue  # superseded by an earlier deadline, or the rule is gone
            del self._scheduled[key]
            rule = self.rules.get(rule_id)
            if rule is not None and (site, device) in self._devices:
                self._evaluate(rule, site, device, now_ms, transitions)
        return transitions

    def next_deadline(self) -> int | None:
        """When ``tick`` next has something to do (None: only a new observation can change anything)."""
        while self._heap:
            due, rule_id, site, device = self._heap[0]
            if self._scheduled.get((rule_id, site, device)) == due:
                return due
            heapq.heappop(self._heap)
        return None

    @property
    def firing(self) -> list[tuple[str, Subject]]:
        """The (rule, subject) pairs currently firing."""
        return [
            (rule_id, Subject(site=site, device=device))
            for (rule_id, site, device), pair in sorted(self._pairs.items())
            if pair.firing
        ]

    # -- memory -----------------------------------------------------------------------------------

    def _remember(self, obs: Observation, now_ms: int) -> DeviceMemory:
        key = (obs.site, obs.device)
        memory = self._devices.get(key)
        if memory is None:
            memory = self._devices[key] = DeviceMemory(kind=obs.kind)
        elif memory.kind != obs.kind:
            memory.kind = obs.kind
            self._forget_selection(obs.site, obs.device)
        if isinstance(obs, StatusIn):
            if obs.ts_ms >= memory.status_ts:  # a will published late must not undo a newer birth
                memory.status_ts = obs.ts_ms
                memory.online = obs.state == "online"
            memory.seen_ms = now_ms
            return memory
        memory.seen_ms = now_ms
        memory.online = True  # a device that speaks is online
        if isinstance(obs, ReadingIn):
            self._remember_reading(memory, obs, now_ms)
        elif isinstance(obs, EventIn):
            memory.events[obs.type] = EventRecord(obs.active, obs.ts_ms, obs.attributes)
        elif isinstance(obs, BirthIn):
            memory.status_ts = max(memory.status_ts, obs.ts_ms)
            if (memory.profile, memory.heartbeat_s) != (obs.profile, obs.heartbeat_s):
                memory.profile, memory.heartbeat_s = obs.profile, obs.heartbeat_s
                self._forget_selection(obs.site, obs.device)
        return memory

    def _remember_reading(self, memory: DeviceMemory, obs: ReadingIn, now_ms: int) -> None:
        if obs.quality == "bad" or obs.value is None:
            return  # not a value: staleness of the metric keeps counting
        memory.values[obs.metric] = obs.value
        memory.metric_seen[obs.metric] = now_ms
        windows = self._windows.get(obs.metric)
        if windows is not None and isinstance(obs.value, int | float) and not isinstance(obs.value, bool):
            memory.add_sample(obs.metric, obs.ts_ms, float(obs.value), windows)

    def _forget_selection(self, site: str, device: str) -> None:
        self._selected.pop((site, device), None)
        self._plans.pop((site, device), None)

    def _can_wait(self, rule_id: str, site: str, device: str) -> bool:
        """Whether a reading can leave a quiet staleness or offline rule to its deadline already scheduled.

        A reading can only make such a condition false and push its deadline later: evaluated when the
        old deadline comes, the rule finds the device fresh and schedules the new one. One evaluation per
        deadline instead of one per reading.
        """
        key = (rule_id, site, device)
        return key not in self._pairs and key in self._scheduled

    def _woken_by_reading(self, obs: ReadingIn, memory: DeviceMemory) -> list[str]:
        """The rules a reading may change (readings are nearly all the traffic: see rules/index.py).

        The hottest code of the hub with rules: it runs for every reading, and in nearly every call
        nothing is woken. Hence the plain loops and the early tests, rather than one comprehension.
        """
        site, device, metric = obs.site, obs.device, obs.metric
        key = (site, device)
        plans = self._plans.get(key)
        if plans is None:
            plans = self._plans[key] = {}
        plan = plans.get(metric)
        if plan is None:
            plan = plans[metric] = self._plan(obs, memory)
        woken = list(plan.eager)
        for rule_id in plan.lazy:
            if not self._can_wait(rule_id, site, device):
                woken.append(rule_id)
        last = memory.values.get(metric)
        if plan.thresholds:
            value = number(last)
            if value is not None:
                woken += plan.thresholds.crossed(value)
        for group in plan.rates:
            woken += group.reached(memory, metric)
        for probe in plan.probes:
            if probe.wakes(last):
                woken.append(probe.rule_id)
        awake = self._awake.get(key)
        if awake and metric in awake:  # awake pairs stay awake after a rule stops selecting the device
            woken += [r for r in awake[metric] if self._selects(self.rules[r], site, device, memory)]
        return woken

    def _plan(self, obs: ReadingIn, memory: DeviceMemory) -> ReadingPlan:
        def selected(rules: Iterable[Rule]) -> list[Rule]:
            return [rule for rule in rules if self._selects(rule, obs.site, obs.device, memory)]

        chosen = [rule.id for rule in selected([*self._by_metric.get(obs.metric, []), *self._every_message])]
        simple = selected(self._simple_by_metric.get(obs.metric, []))
        return ReadingPlan(
            eager=tuple(r for r in chosen if r not in self._lazy),
            lazy=tuple(r for r in chosen if r in self._lazy),
            thresholds=ThresholdIndex.of(simple),
            rates=rate_groups(simple),
            probes=tuple(self._probes[rule.id] for rule in simple if rule.id in self._probes),
        )

    def _selected_rules(self, obs: Observation, memory: DeviceMemory) -> Iterator[Rule]:
        if isinstance(obs, EventIn):
            candidates = self._by_event.get(obs.type, []) + [
                rule for rule, cond in self._event_globs if cond.matches(obs.type)
            ]
        else:
            # A birth or status can change which rules select the device, and what any rule reads.
            candidates = list(self.rules.values())
        for rule in [*candidates, *self._every_message]:
            if self._selects(rule, obs.site, obs.device, memory):
                yield rule

    def _selects(self, rule: Rule, site: str, device: str, memory: DeviceMemory) -> bool:
        cache = self._selected.setdefault((site, device), {})
        chosen = cache.get(rule.id)
        if chosen is None:
            tags = self._tags.get((site, device), frozenset())
            chosen = rule.select.matches(site=site, device=device, kind=memory.kind, profile=memory.profile, tags=tags)
            cache[rule.id] = chosen
        return chosen

    # -- evaluation -------------------------------------------------------------------------------

    def _evaluate(
        self, rule: Rule, site: str, device: str, now_ms: int, out: list[Transition], selected: bool | None = None
    ) -> None:
        key = (rule.id, site, device)
        memory = self._devices[(site, device)]
        if selected is None:
            selected = self._selects(rule, site, device, memory)
        pair = self._pairs.get(key)
        latches = {} if pair is None else pair.latches
        ev = Evaluation(latches=latches)
        holds = selected and rule.when.holds(memory, ev, now_ms)
        if pair is None:
            if not holds and rule.id not in self._clocked and not any(latches.values()):
                return  # quiet and staying quiet, nothing for the clock to do: most pairs, most of the time
            pair = _Pair(latches=latches)
        if holds and not pair.firing:
            if pair.pending_ms is None:
                pair.pending_ms = now_ms
            if now_ms - pair.pending_ms >= rule.for_ms:
                pair.firing, pair.pending_ms = True, None
                out.append(self._transition(rule, site, device, memory, AlertState.FIRING, now_ms, ev))
        elif not holds:
            pair.pending_ms = None
            if pair.firing:
                pair.firing = False
                out.append(self._transition(rule, site, device, memory, AlertState.RESOLVED, now_ms, ev))
        quiet = not (pair.firing or pair.pending_ms is not None or any(pair.latches.values()))
        self._keep(key, None if quiet else pair)  # nothing to remember: thousands of quiet devices cost nothing
        if selected:
            self._schedule(rule, key, memory, pair, now_ms)

    def _keep(self, key: _PairKey, pair: _Pair | None) -> None:
        """Remember a pair (None: forget it), and whether a single-threshold rule's pair is awake."""
        if pair is None:
            self._pairs.pop(key, None)
        else:
            self._pairs[key] = pair
        rule_id, site, device = key
        metric = self._simple.get(rule_id)
        if metric is not None:
            awake = self._awake.setdefault((site, device), {}).setdefault(metric, set())
            if pair is None:
                awake.discard(rule_id)
            else:
                awake.add(rule_id)

    def _rebuild_awake(self) -> None:
        self._awake.clear()
        for key, pair in self._pairs.items():
            self._keep(key, pair)

    def _schedule(self, rule: Rule, key: _PairKey, memory: DeviceMemory, pair: _Pair, now_ms: int) -> None:
        if pair.pending_ms is None and rule.id not in self._clocked:
            return
        deadlines = [d for d in (rule.when.deadline(memory, now_ms),) if d is not None]
        if pair.pending_ms is not None:
            deadlines.append(pair.pending_ms + rule.for_ms)
        if not deadlines:
            return
        due = min(deadlines)
        scheduled = self._scheduled.get(key)
        if scheduled is None or due < scheduled or scheduled <= now_ms:
            self._scheduled[key] = due
            heapq.heappush(self._heap, (due, *key))

    def _transition(
        self, rule: Rule, site: str, device: str, memory: DeviceMemory, state: AlertState, now_ms: int, ev: Evaluation
    ) -> Transition:
        context = {
            "site": site, "device": device, "kind": memory.kind, "profile": memory.profile, "rule": rule.id,
            "value": ev.value, "metric": rule.metric, "severity": rule.severity.value, "team": rule.team,
        }  # fmt: skip
        return Transition(
            rule=rule.id, subject=Subject(site=site, device=device), state=state, at_ms=now_ms,
            severity=rule.severity, team=rule.team, summary=rule.render(context), kind=memory.kind,
            runbook=rule.runbook, value=ev.value,
        )  # fmt: skip

    # -- rules and persistence --------------------------------------------------------------------

    def replace_rules(self, rules: Sequence[Rule], now_ms: int) -> list[Transition]:
        """Run a new set of rules: alerts of rules that are gone resolve; the others are evaluated afresh."""
        out: list[Transition] = []
        gone = {rule_id for rule_id in self.rules} - {rule.id for rule in rules}
        for (rule_id, site, device), pair in sorted(self._pairs.items()):
            if rule_id in gone and pair.firing:
                ev = Evaluation(latches={})
                memory = self._devices[(site, device)]
                out.append(self._transition(self.rules[rule_id], site, device, memory, AlertState.RESOLVED, now_ms, ev))
        self._pairs = {k: p for k, p in self._pairs.items() if k[0] not in gone}
        for pair in self._pairs.values():
            pair.latches.clear()  # a changed threshold starts from its new limits
        self._install(rules)
        self._rebuild_awake()
        for memory in self._devices.values():
            memory.rebuild_extremes(self._windows)
        self._schedule_everything(now_ms)
        return out

    def _schedule_everything(self, now_ms: int) -> None:
        """Evaluate every rule for every known device at the next tick."""
        self._heap.clear()
        self._scheduled.clear()
        for site, device in self._devices:
            for rule_id in self.rules:
                key = (rule_id, site, device)
                self._scheduled[key] = now_ms
                self._heap.append((now_ms, *key))
        heapq.heapify(self._heap)

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """The engine's state as JSON-ready data, a copy (the hub saves it; ``restore`` reads it back)."""
        return {
            "version": SNAPSHOT_VERSION,
            "at": now_ms,
            "devices": [[site, device, memory.dump()] for (site, device), memory in self._devices.items()],
            "pairs": [
                [rule_id, site, device, pair.pending_ms, pair.firing, sorted(pair.latches.items())]
                for (rule_id, site, device), pair in self._pairs.items()
            ],
        }

    def restore(self, state: Mapping[str, Any], now_ms: int) -> None:
        """Take back a snapshot; its timers resume as if no time had passed while the hub was down."""
        if state.get("version") != SNAPSHOT_VERSION:
            return  # an unknown format: start fresh rather than misread it
        shift = max(0, now_ms - int(state["at"]))
        self._devices = {(site, device): DeviceMemory.load(data, shift) for site, device, data in state["devices"]}
        for memory in self._devices.values():
            memory.rebuild_extremes(self._windows)
        self._pairs = {}
        for rule_id, site, device, pending, firing, latches in state["pairs"]:
            if rule_id in self.rules and (site, device) in self._devices:
                self._pairs[(rule_id, site, device)] = _Pair(
                    pending_ms=None if pending is None else int(pending) + shift,
                    firing=bool(firing),
                    latches={int(cid): bool(value) for cid, value in latches},
                )
        self._selected.clear()
        self._plans.clear()
        self._rebuild_awake()
        self._schedule_everything(now_ms)
