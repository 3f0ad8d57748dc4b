"""Errors of the rules package.

Exception tree::

    RuleError            a rule file cannot be used; ``problems`` holds one line per problem,
                         each ``path:line: rule 'id': field: reason``
"""

from __future__ import annotations

from collections.abc import Sequence


class RuleError(Exception):
    """One or more rule files are invalid: nothing of them is used, the rules in force stay."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(f"invalid rules ({head}):\n" + "\n".join(f"  {p}" for p in self.problems))
