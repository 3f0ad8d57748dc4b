"""Rule files: the shipped packs load; every kind of mistake is reported with file, line, rule and reason."""
# ruff: noqa: E501  (the table of cases reads best one case per line)

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.errors import RuleError
from rules.loader import PACKS_DIR, load_rules, parse_rules, rule_files

GOOD = """\
rules:
  - id: hot
    summary: "{site}: {device} at {value}"
    severity: major
    team: it
    when:
      threshold: {metric: climate.return_air_temperature, above: 27, clear_below: 25}
"""


def test_the_shipped_packs_load_and_route_to_known_teams() -> None:
    rules = load_rules([PACKS_DIR])
    assert {path.name for path in rule_files([PACKS_DIR])} == {
        "server-room.yaml", "ups.yaml", "cameras.yaml", "gas-suppression.yaml", "platform.yaml", "public-space.yaml",
    }  # fmt: skip
    assert {rule.team for rule in rules} == {"it", "police", "adp"}
    root = Path(__file__).parents[2]
    for rule in rules:
        assert rule.runbook is not None
        path, _, anchor = rule.runbook.partition("#")
        headings = [line.lstrip("#").strip() for line in (root / path).read_text().splitlines() if line.startswith("#")]
        # GitHub's anchors: lower case, spaces to hyphens, punctuation dropped.
        anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
        assert anchor in anchors, f"{rule.id}: no heading for #{anchor} in {path}"


def problems(text: str, teams: tuple[str, ...] = ("it", "police", "adp")) -> list[str]:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, teams, source="site.yaml")
    return list(caught.value.problems)


def bad(line: int, field: str, value: str) -> str:
    return GOOD.replace(GOOD.splitlines()[line - 1], f"    {field}: {value}" if field else value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("severity: major", "severity: major\n    colour: red"), "site.yaml:5: rule 'hot': colour: unknown field 'colour'"),
        (bad(4, "severity", "urgent"), "site.yaml:4: rule 'hot': severity: Input should be 'critical'"),
        (bad(5, "team", "firemen"), "site.yaml:5: rule 'hot': team: unknown team 'firemen' (configured teams: it, police, adp)"),
        (bad(3, "summary", '"{site.__class__}"'), "site.yaml:3: rule 'hot': summary: unknown placeholder(s) {site.__class__}"),
        (GOOD.replace("above: 27", "above: hot"), "site.yaml:7: rule 'hot': when.threshold.above: Input should be a valid number"),
        (GOOD.replace("clear_below: 25", "clear_below: 29"), "site.yaml:7: rule 'hot': when.threshold: clear_below 29 is above the limit 27"),
        (GOOD.replace("above: 27, ", ""), "site.yaml:7: rule 'hot': when.threshold: give exactly one of 'above' and 'below'"),
        (GOOD.replace("    when:", "    for: soon\n    when:"), "site.yaml:6: rule 'hot': for: 'soon' is not a duration"),
        (GOOD.replace("threshold:", "treshold:"), "site.yaml:7: rule 'hot': when.treshold: unknown field 'treshold'"),
        (GOOD.replace("      threshold", "      stale: {max_age: 1m}\n      threshold"), "site.yaml:7: rule 'hot': when: give exactly one condition"),
        (GOOD.replace("id: hot", "id: Hot Room"), "site.yaml:2: rule 'Hot Room': id: String should match pattern"),
        (GOOD + GOOD[7:], "site.yaml:8: rule 'hot': id: already defined at site.yaml:2"),
        ("rules:\n  - id: [unclosed\n", "site.yaml:3: not valid YAML"),
        ("rules: {}\n", "site.yaml:1: rules: Input should be a valid list"),
        (GOOD + "    severity: minor\n", "not valid YAML: key 'severity' appears twice (line 8)"),
    ],
)  # fmt: skip
def test_a_bad_rule_file_names_file_line_rule_and_reason(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) or expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    text = bad(4, "severity", "urgent").replace("team: it", "team: nobody")
    assert len(problems(text)) == 2


def test_one_bad_file_among_good_ones_refuses_them_all(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(bad(5, "team", "firemen"))
    with pytest.raises(RuleError, match=r"b\.yaml:5: rule 'hot': team"):
        load_rules([tmp_path])


def test_an_unreadable_or_missing_file_is_a_problem_too(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("rules: []  # ăîș".encode("utf-16"))
    with pytest.raises(RuleError, match="cannot read the rule file") as caught:
        load_rules([tmp_path, tmp_path / "missing.yaml"])
    assert len(caught.value.problems) == 2


def test_an_empty_file_holds_no_rules(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert load_rules([tmp_path]) == []


def test_teams_are_the_configured_ones() -> None:
    assert problems(GOOD, teams=("police",))[0].endswith("unknown team 'it' (configured teams: police)")
    assert [rule.team for rule in parse_rules(GOOD.replace("team: it", "team: fire-brigade"), ("fire-brigade",))] == [
        "fire-brigade"
    ]
