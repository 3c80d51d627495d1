"""Two trees' raw results side by side: `python -m bench.compare BEFORE_DIR AFTER_DIR`.

Each directory holds copies of `bench/results/raw/scenario1.json` and `scenario2.json` from
interleaved runs of `make bench SCENARIOS=1` / `=2` in each tree (any file names starting
`scenario1` or `scenario2`). Prints, per target, the median of every run of either tree and
their quotient. Only our own targets (booking, runtime*) can move with a change to this
code; the baselines (bare, dualwrite, raw, faststream) show how noisy the machine was.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEYS: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "scenario1": (lambda run: f"{run['target']}@{run['clients']}", "requests_per_second"),
    "scenario2": (lambda run: str(run["variant"]), "rate"),
}


def rates(folder: Path, scenario: str) -> dict[str, list[float]]:
    key, value = KEYS[scenario]
    found: dict[str, list[float]] = defaultdict(list)
    for path in sorted(folder.glob(f"{scenario}*.json")):
        for run in json.loads(path.read_text())["runs"]:
            found[key(run)].append(float(run[value]))
    return found


def table(before: Path, after: Path) -> str:
    lines = ["| scenario | target | before (median, min–max) | after | after ÷ before |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for scenario in KEYS:
        old, new = rates(before, scenario), rates(after, scenario)
        for target in sorted(old.keys() & new.keys()):
            a, b = statistics.median(old[target]), statistics.median(new[target])
            lines.append(
                f"| {scenario[-1]} | {target} | {a:,.0f} ({min(old[target]):,.0f}–"
                f"{max(old[target]):,.0f}, n={len(old[target])}) | {b:,.0f} "
                f"({min(new[target]):,.0f}–{max(new[target]):,.0f}) | {b / a:.2f}× |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), Path(sys.argv[2])))
