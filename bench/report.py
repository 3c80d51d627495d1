"""Writes the results: raw JSON per scenario (raw/, not committed), summary.json and
summary.md (committed, shown in the README), and the verdict lines."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import Any

from bench.config import RAW, RESULTS, Sizes
from bench.scenarios import Outcome
from bench.stats import Verdict


def write_raw(scenario: int, outcome: Outcome) -> None:
    RAW.mkdir(parents=True, exist_ok=True)
    (RAW / f"scenario{scenario}.json").write_text(json.dumps(outcome.raw, indent=1, default=str))


def write_summary(outcomes: dict[int, Outcome], sizes: Sizes, seconds: float) -> str:
    verdicts = [v for outcome in outcomes.values() for v in outcome.verdicts]
    meta: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": sizes.quick,
        "repeats": sizes.repeats,
        "seconds": round(seconds),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
    }
    summary = {
        "meta": meta,
        "verdicts": [v.as_json() for v in verdicts],
        "plots": [p for o in outcomes.values() for p in o.plots],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    markdown = _markdown(verdicts, meta, [p for o in outcomes.values() for p in o.plots])
    (RESULTS / "summary.md").write_text(markdown)
    return markdown


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _markdown(verdicts: list[Verdict], meta: dict[str, Any], plots: list[str]) -> str:
    lines = [
        f"Run finished {meta['finished_at']} on {meta['machine']}"
        f"{' (QUICK smoke sizes)' if meta['quick'] else ''}; {meta['repeats']} repetitions, "
        f"median (min–max); {meta['seconds']} s in all.",
        "",
        "| # | figure | measured | target | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in verdicts:
        target = f"{v.comparison} {v.target:g}{v.unit}" if v.available else "—"
        measured = v.figure.text(v.unit) if v.available else "—"
        note = f" ({v.note})" if v.note else ""
        lines.append(f"| {v.scenario} | {v.name}{note} | {measured} | {target} | {v.status} |")
    lines += ["", *[f"![{p}]({p})" for p in plots], ""]
    return "\n".join(lines)
