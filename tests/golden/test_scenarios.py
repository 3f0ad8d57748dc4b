"""Golden alert timelines of the shipped scenarios.

Live: each scenario, played by the simulators through the edge agent, a real Mosquitto and the hub with
the scenario's rule pack, gives exactly the golden timeline (every transition, none twice, each within a
tolerance of its golden time). Replay: the recording of that live run, replayed with
``cityhub rules test``, gives the same transitions; and the committed recordings replay to the golden
files exactly (the fast check that a rule change did not change what fires).

``CITYHUB_UPDATE_GOLDEN=1 pytest tests/golden`` rewrites the recordings and the golden files from a live
run: review the diff before committing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from services import MosquittoServer

from cityhub.replay.recording import read_recording
from cityhub.replay.replay import replay
from rules.loader import load_rules

from .scenario_run import CAMERA_SITES, Case, on_time, run_live

UPDATE = os.environ.get("CITYHUB_UPDATE_GOLDEN") == "1"
CASES = [
    Case(scenario="ups-mains-failure", pack="ups", speed=4.0, poll_s=0.5, tail_s=8),
    Case(scenario="gas-discharge", pack="gas-suppression", speed=4.0, poll_s=0.5, tail_s=40),
    Case(
        scenario="camera-offline",
        pack="cameras",
        speed=4.0,
        poll_s=0.5,
        tail_s=8,
        sites=CAMERA_SITES,
    ),
    Case(
        scenario="server-room-overheating",
        pack="server-room",
        speed=10.0,
        poll_s=1.0,
        tail_s=20,
        tags={"cjt-server-room/room-1": ["server-room"]},
    ),
]


def _tags(case: Case) -> dict[tuple[str, str], frozenset[str]]:
    return {tuple(key.split("/")): frozenset(v) for key, v in case.tags.items()}  # type: ignore[misc]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.scenario)
async def test_live_scenario_gives_the_golden_timeline(
    case: Case, tmp_path: Path, fresh_mosquitto: MosquittoServer
) -> None:
    recording = case.recording if UPDATE else tmp_path / "recording.jsonl"
    live = await run_live(case, tmp_path, fresh_mosquitto, recording)
    replayed = replay(read_recording(recording), load_rules([case.rules]), tags=_tags(case), speed=case.speed)
    if UPDATE:
        case.golden.write_text("".join(line + "\n" for line in replayed.timeline()), encoding="utf-8")
    golden = case.golden.read_text(encoding="utf-8").splitlines()
    assert golden, f"{case.golden} holds no transition: the scenario should raise alerts"
    problems = on_time(live.timeline(), golden, case.tolerance_s)
    assert not problems, "\n".join(problems)
    # The recording replays to what the hub did live (same transitions, times within a poll or two).
    assert not on_time(replayed.timeline(), live.timeline(), case.tolerance_s)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.scenario)
def test_committed_recording_replays_to_the_golden_file(case: Case) -> None:
    tags = [f"--tag={key}={','.join(values)}" for key, values in case.tags.items()]
    command = [
        sys.executable, "-m", "cityhub", "rules", "test", "--recording", str(case.recording), "--rules",
        str(case.rules), "--speed", str(case.speed), "--golden", str(case.golden), *tags,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "timeline matches" in done.stderr
