"""``cityhub report`` as people run it: a hub's configuration, a period, files out; bad input refused clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hub.kpi.report import TABLES

from .conftest import FROM, TO

COLUMNS = {
    "devices": ["site", "kind", "managed", "online", "offline", "unknown"],
    "availability_by_device": [
        "site", "device", "kind", "state_at_end", "online_s", "observed_s", "coverage", "availability", "went_offline",
    ],
    "availability_by_site": ["site", "devices", "devices_with_data", "online_s", "observed_s", "availability"],
    "alerts_by_team": ["team", "severity", "alerts", "reopened"],
    "response_times": ["team", "episodes", "acknowledged", "mtta_s", "resolved", "mttr_s", "open_at_end"],
}  # fmt: skip


def config_for(data_dir: Path) -> Path:
    path = data_dir.parent / "hub.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(data_dir), "hub_id": "kpi-hub"}), encoding="utf-8")
    return path


def cityhub_report(*args: str, without_pyarrow: bool = False) -> subprocess.CompletedProcess[str]:
    # sys.modules[name] = None is how Python itself says a module cannot be imported.
    hide = "sys.modules['pyarrow'] = None; " if without_pyarrow else ""
    code = f"import sys; {hide}from cityhub.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "report", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_writes_one_csv_per_table_and_a_summary(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = cityhub_report("--config", str(config_for(city)), "--from", FROM, "--to", TO, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.csv" for name in TABLES)
    for name, columns in COLUMNS.items():
        assert list(pd.read_csv(out / f"{name}.csv").columns) == columns, name
    times = pd.read_csv(out / "response_times.csv").set_index("team")
    # conftest: it acknowledged after 60 s and the rules resolved after 300 s; police 120 s and 600 s.
    assert times.loc["it", ["mtta_s", "mttr_s"]].tolist() == [60.0, 300.0]
    assert times.loc["police", ["mtta_s", "mttr_s"]].tolist() == [120.0, 600.0]
    availability = pd.read_csv(out / "availability_by_device.csv").set_index("device")["availability"]
    assert availability["ups-1"] == 0.8
    assert pd.isna(availability["aq-1"])  # no data: an empty cell, not 100 %
    assert "KPI report 2026-03-02T00:00:00+02:00 to 2026-03-02T10:00:00+02:00" in done.stdout
    assert "devices managed   4 (2 online at the end)" in done.stdout
    assert "MTTA              90.0 s" in done.stdout  # (60 + 120) / 2


def test_writes_parquet(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    config = str(config_for(city))
    done = cityhub_report("--config", config, "--from", FROM, "--to", TO, "--out", str(out), "--format", "parquet")
    assert done.returncode == 0, done.stderr
    by_site = pd.read_parquet(out / "availability_by_site.parquet")
    assert by_site.set_index("site")["availability"].to_dict() == {"palace": 0.9, "park-central": 0.5}


def test_parquet_without_pyarrow_is_a_clear_error(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    config = str(config_for(city))
    args = ("--config", config, "--from", FROM, "--to", TO, "--out", str(out), "--format", "parquet")
    done = cityhub_report(*args, without_pyarrow=True)
    assert done.returncode == 2
    assert (
        done.stderr == "cityhub report: Parquet needs pyarrow: pip install 'cityhub[reports]' (or use --format csv)\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-13-01", TO, "'from' '2026-13-01' is not an ISO date"),
        ("yesterday", TO, "'from' 'yesterday' is not an ISO date"),
        (FROM, "2026-03-02T25:00", "'to' '2026-03-02T25:00' is not an ISO date"),
        (TO, FROM, "the period must end after it starts"),
        ("2024-01-01", "2026-01-01", "a report covers at most 400 days"),
    ],
)
def test_bad_dates_are_refused_clearly(city: Path, tmp_path: Path, start: str, end: str, message: str) -> None:
    out = tmp_path / "never"
    done = cityhub_report("--config", str(config_for(city)), "--from", start, "--to", end, "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.startswith(f"cityhub report: {message}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_data_directory_that_is_not_there_is_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path / "no-such-dir")
    done = cityhub_report("--config", str(config), "--from", FROM, "--to", TO, "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "no hub data directory" in done.stderr
