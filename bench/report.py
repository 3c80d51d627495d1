"""Writes the results: raw JSON per scenario (raw/, not committed), summary.json and
summary.md (committed, shown in the README), and the verdict lines."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import Any

from bench.config import RAW, RESULTS, Sizes
from bench.scenarios import Outcome
from bench.stats import Figure


def write_raw(scenario: int, outcome: Outcome) -> None:
    RAW.mkdir(parents=True, exist_ok=True)
    (RAW / f"scenario{scenario}.json").write_text(json.dumps(outcome.raw, indent=1, default=str))


def write_summary(outcomes: dict[int, Outcome], sizes: Sizes, seconds: float) -> str:
    """Write summary.json and summary.md. Scenarios not run this time keep their rows from
    the previous summary (marked with when they ran), so one scenario can be rerun alone."""
    verdicts = [v for outcome in outcomes.values() for v in outcome.verdicts]
    # A scenario can report another's figures too (5 measures 8's memory): neither keeps
    # its earlier rows.
    produced = set(outcomes) | {int(v.as_json()["scenario"]) for v in verdicts}
    earlier = _earlier_rows(produced)
    meta: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": sizes.quick,
        "repeats": sizes.repeats,
        "seconds": round(seconds),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
    }
    plots = [p for o in outcomes.values() for p in o.plots]
    rows = [{**v.as_json(), "line": v.line(), "ran_at": meta["finished_at"]} for v in verdicts]
    rows = sorted([*earlier["verdicts"], *rows], key=lambda row: int(row["scenario"]))
    plots = sorted({*earlier["plots"], *plots})
    summary = {"meta": meta, "verdicts": rows, "plots": plots}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    markdown = _markdown(rows, meta, plots)
    (RESULTS / "summary.md").write_text(markdown)
    return markdown


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _earlier_rows(ran: set[int]) -> dict[str, list[Any]]:
    path = RESULTS / "summary.json"
    if not path.exists():
        return {"verdicts": [], "plots": []}
    earlier = json.loads(path.read_text())
    ran_at = earlier.get("meta", {}).get("finished_at", "?")
    keep = [
        {"ran_at": ran_at, **row}
        for row in earlier.get("verdicts", [])
        if int(row["scenario"]) not in ran
    ]
    plots = [p for p in earlier.get("plots", []) if int(p[1]) not in ran]  # "s5_burst.png"
    return {"verdicts": keep, "plots": plots}


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any], plots: list[str]) -> str:
    lines = [
        f"Run finished {meta['finished_at']} on {meta['machine']}"
        f"{' (QUICK smoke sizes)' if meta['quick'] else ''}; {meta['repeats']} repetitions, "
        f"median (min–max); {meta['seconds']} s in all.",
        "",
        "| # | figure | measured | target | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines[0] = (
        f"Scenarios finished between {min(r['ran_at'] for r in rows)} and "
        f"{max(r['ran_at'] for r in rows)} on {meta['machine']}"
        f"{' (QUICK smoke sizes)' if meta['quick'] else ''}; {meta['repeats']} repetitions, "
        "median (min–max)."
    )
    for row in rows:
        figure = Figure(tuple(row["figure"]["samples"]))
        available = row["available"]
        target = f"{row['comparison']} {row['target']:g}{row['unit']}" if available else "—"
        measured = figure.text(row["unit"], row["target"]) if available else "—"
        note = f" ({row['note']})" if row["note"] else ""
        status = {True: "MET", False: "MISSED", None: "NOT AVAILABLE"}[row["met"]]
        lines.append(
            f"| {row['scenario']} | {row['name']}{note} | {measured} | {target} | {status} |"
        )
    lines += ["", *[f"![{p}]({p})" for p in plots], ""]
    return "\n".join(lines)
