"""The published JSON Schemas are the code's, and they accept and refuse what the code does."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.contract import Limits, RejectedMessage, Topics, validate_message
from cityhub.contract.schemas import render, schema_documents

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_published_schema_matches_the_code(name: str) -> None:
    published = SCHEMA_DIR / name
    assert published.exists(), f"{published} missing: run python -m cityhub.contract.schemas docs/schemas"
    assert published.read_text(encoding="utf-8") == render(schema_documents()[name]), (
        f"{published} is stale: run python -m cityhub.contract.schemas docs/schemas"
    )


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema_documents()[name])


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60), st.floats(allow_nan=False), st.text(max_size=20)
)
readings = st.fixed_dictionaries(
    {"metric": st.sampled_from(["a.b", "battery.charge", "Bad", "x" * 70]), "ts": st.integers(-1, 2**54)},
    optional={
        "value": scalars | st.lists(st.integers(), max_size=2),
        "unit": st.text(max_size=40),
        "quality": st.sampled_from(["good", "bad", "meh"]),
    },
)
messages = st.fixed_dictionaries(
    {
        "device": st.sampled_from(["ups-01", "", "a b"]),
        "site": st.just("cjt"),
        "kind": st.sampled_from(["ups", "UPS"]),
        "boot": st.integers(-1, 2**54),
        "seq": st.integers(-1, 10),
        "readings": st.lists(readings, max_size=3),
    }
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_schema_and_code_agree_on_telemetry(message: dict[str, object]) -> None:
    """Whatever the published schema accepts, the hub accepts, and the other way round."""
    schema = schema_documents()["telemetry.schema.json"]
    schema_ok = jsonschema.Draft202012Validator(schema).is_valid(message)
    device = message["device"] if message["device"] in ("ups-01",) else "ups-01"
    wide_limits = Limits(max_past_ms=2**60, max_future_ms=2**60)
    try:
        validate_message(
            Topics(), f"cityhub/v1/cjt/{device}/telemetry", json.dumps(message).encode(), now_ms=0, limits=wide_limits
        )
        code_ok = True
    except RejectedMessage as exc:
        code_ok = False
        # The schema cannot express "a good reading needs a value", nor the identity check.
        if exc.reason.value in ("identity_mismatch",) or "good quality" in exc.detail:
            return
    assert schema_ok == code_ok
