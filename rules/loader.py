"""Rule files: read, checked as a whole, and compiled into ``Rule`` values.

Every problem of every file is reported at once, each as ``path:line: rule 'id': field: reason``, and
one bad file means none of the new rules are used (the caller keeps the rules in force): a half-loaded
set of alert rules is worse than the old set.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cityhub.yamlfile import load_yaml
from rules.conditions import Combination, Condition, EventCondition, Offline, Rate, Stale, State, Threshold, typed
from rules.errors import RuleError
from rules.schema import ConditionIn, RuleFileIn, RuleIn, SelectIn
from rules.spec import Rule, Selector

#: The shipped rule packs (server room, UPS, cameras, gas suppression, platform).
PACKS_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_TEAMS = ("it", "police", "adp")


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The rule files named: files as given, folders as their ``*.yaml`` files in name order."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


def load_rules(paths: Iterable[Path], teams: Sequence[str] = DEFAULT_TEAMS) -> list[Rule]:
    """Every rule of the files and folders given; RuleError lists every problem found."""
    problems: list[str] = []
    rules: list[Rule] = []
    for path in rule_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read the rule file ({exc})")
            continue
        found, file_problems = _parse(text, str(path), teams)
        rules.extend(found)
        problems.extend(file_problems)
    problems.extend(_duplicates(rules))
    if problems:
        raise RuleError(problems)
    return rules


def parse_rules(text: str, teams: Sequence[str] = DEFAULT_TEAMS, source: str = "<rules>") -> list[Rule]:
    """The rules of one file's text (the API's validate endpoint); RuleError lists every problem."""
    rules, problems = _parse(text, source, teams)
    problems.extend(_duplicates(rules))
    if problems:
        raise RuleError(problems)
    return rules


def _parse(text: str, source: str, teams: Sequence[str]) -> tuple[list[Rule], list[str]]:
    try:
        data = load_yaml(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        return [], [f"{source}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]
    if data is None:
        return [], []  # an empty file (everything commented out) holds no rules
    try:
        parsed = RuleFileIn.model_validate(data, context={"teams": list(teams)})
    except ValidationError as exc:
        return [], [_describe(source, data, root, error) for error in exc.errors(include_url=False)]
    rules = [_compile(rule, f"{source}:{_line(root, ('rules', i))}") for i, rule in enumerate(parsed.rules)]
    return rules, []


def _duplicates(rules: Sequence[Rule]) -> Iterator[str]:
    first: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in first:
            yield f"{rule.source}: rule '{rule.id}': id: already defined at {first[rule.id].source}"
        else:
            first[rule.id] = rule


def _describe(source: str, data: Any, root: yaml.Node | None, error: Any) -> str:
    loc = tuple(error["loc"])
    where = f"{source}:{_line(root, loc)}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}"
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = _rule_id(data, loc[1])
        field = ".".join(str(part) for part in loc[2:]) or "(the rule)"
        return f"{where}: rule {rule_id}: {field}: {message}"
    field = ".".join(str(part) for part in loc) or "(top level)"
    return f"{where}: {field}: {message}"


def _rule_id(data: Any, index: int) -> str:
    try:
        return repr(str(data["rules"][index]["id"]))
    except (KeyError, IndexError, TypeError):
        return f"#{index + 1}"


def _line(root: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The line of the deepest node of ``loc`` present in the YAML (1-based)."""
    node = root
    line = (node.start_mark.line + 1) if node is not None else 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if getattr(key, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _compile(rule: RuleIn, source: str) -> Rule:
    counter = itertools.count()
    return Rule(
        id=rule.id, summary=rule.summary, severity=rule.severity, team=rule.team, runbook=rule.runbook,
        select=_selector(rule.select), for_ms=int(rule.for_ * 1000), when=_condition(rule.when, counter),
        source=source,
    )  # fmt: skip


def _selector(select: SelectIn) -> Selector:
    return Selector(
        sites=tuple(select.site or ()), kinds=tuple(select.kind or ()), profiles=tuple(select.profile or ()),
        devices=tuple(select.device or ()), tags=frozenset(select.tags),
    )  # fmt: skip


def _condition(cond: ConditionIn, counter: Iterator[int]) -> Condition:
    if cond.threshold is not None:
        t = cond.threshold
        if t.above is not None:
            limit, clear = t.above, t.clear_below if t.clear_below is not None else t.above
            return Threshold(cid=next(counter), metric=t.metric, limit=limit, clear=clear, above=True)
        assert t.below is not None  # the schema requires one of the two
        clear = t.clear_above if t.clear_above is not None else t.below
        return Threshold(cid=next(counter), metric=t.metric, limit=t.below, clear=clear, above=False)
    if cond.stale is not None:
        return Stale(metric=cond.stale.metric, max_age_ms=int(cond.stale.max_age * 1000))
    if cond.offline is not None:
        return Offline(heartbeats=cond.offline.heartbeats)
    if cond.rate is not None:
        r = cond.rate
        change, rise = (r.rise, True) if r.rise is not None else (r.fall or 0.0, False)
        return Rate(metric=r.metric, change=change, rise=rise, window_ms=int(r.window * 1000))
    if cond.event is not None:
        states = frozenset(cond.event.state) if cond.event.state else None
        return EventCondition(type=cond.event.type, states=states)
    if cond.state is not None:
        return State(metric=cond.state.metric, values=frozenset(typed(v) for v in cond.state.in_))
    parts = cond.all if cond.all is not None else cond.any
    assert parts is not None  # the schema requires exactly one kind
    return Combination(parts=tuple(_condition(part, counter) for part in parts), every=cond.all is not None)
