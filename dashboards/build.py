"""Write the boards of dashboards/boards.py as Grafana dashboard JSON into dashboards/json/.

    python -m dashboards.build           # (re)write dashboards/json/*.json
    python -m dashboards.build --check   # exit 1 if a committed file differs from the builder's output

The JSON files are committed (Grafana's file provider reads them as they are); edit boards.py, not them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dashboards.boards import BOARDS
from dashboards.grafana import dashboard

JSON_DIR = Path(__file__).resolve().parent / "json"


def rendered() -> dict[str, str]:
    """Each board's file name and the exact text the builder writes for it."""
    return {f"{name}.json": render(dashboard(make())) for name, make in BOARDS.items()}


def render(board: dict[str, Any]) -> str:
    """Stable JSON text: two-space indents, UTF-8 kept, a final newline."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def stale(directory: Path = JSON_DIR) -> list[str]:
    """The files in ``directory`` that differ from the builder's output, are missing, or are extra."""
    wanted = rendered()
    present = {p.name for p in directory.glob("*.json")}
    changed = [
        n for n, text in wanted.items() if not (directory / n).is_file() or (directory / n).read_text("utf-8") != text
    ]
    return sorted(changed + sorted(present - wanted.keys()))


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write every board (and remove JSON files of boards that no longer exist)."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for old in directory.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    paths = []
    for name, text in wanted.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line: write, or check with ``--check``."""
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"dashboards/json/{name} is out of date: run python -m dashboards.build", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
