"""short_text: what a device says of itself, made to fit the contract's short text fields."""

from __future__ import annotations

import pytest

from cityhub.contract import StatusMessage, short_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("AXIS P3245-LVE", "AXIS P3245-LVE"),
        ("line one\nline two\t!", "line one line two !"),
        ("x" * 128, "x" * 128),
        ("x" * 129, "x" * 127 + "…"),
    ],
)
def test_short_text_fits_a_devices_words_into_the_contract(text: str | None, expected: str | None) -> None:
    assert short_text(text) == expected
    if text is not None:
        StatusMessage(device="d", site="s", kind="camera", state="offline", boot=1, ts=1, reason=short_text(text))
