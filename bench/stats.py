"""Medians, spreads, percentiles, and the verdict of one figure against its target."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from math import inf
from typing import Any, Literal

Comparison = Literal[">=", "<="]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Figure:
    """One measured figure over the repetitions: median and spread (min-max)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def text(self, unit: str = "", target: float | None = None) -> str:
        """Median (min–max); with ``target``, in as many more decimals as it takes for a
        median that is not the target not to read as it (0.9995× for a target of 1×, not
        1.00× beside a MISSED)."""
        places = _places_apart(self.median, target)
        median = _fmt(self.median, places)
        if len(self.samples) == 1:
            return f"{median}{unit}"
        return f"{median}{unit} ({_fmt(self.low, places)}–{_fmt(self.high, places)})"


def _fmt(value: float, places: int | None = None) -> str:
    if value != value:  # NaN
        return "n/a"
    if value in (float("inf"), float("-inf")):
        return "∞"
    if places is not None:
        return f"{value:,.{places}f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _places_apart(value: float, target: float | None) -> int | None:
    """The decimals that tell ``value`` from ``target`` when the usual ones do not (at most
    six); None when they do, or when the two are equal."""
    if target is None or value == target or _fmt(value) != _fmt(target):
        return None
    for places in range(1, 7):
        if f"{value:.{places}f}" != f"{target:.{places}f}":
            return places
    return None


@dataclass
class Verdict:
    scenario: int
    name: str
    figure: Figure
    comparison: Comparison
    target: float
    unit: str = ""
    note: str = ""
    available: bool = True
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if not self.available or self.figure.median != self.figure.median:
            return None
        if self.comparison == ">=":
            return self.figure.median >= self.target
        return self.figure.median <= self.target

    @property
    def status(self) -> str:
        return {True: "MET", False: "MISSED", None: "NOT AVAILABLE"}[self.met]

    def line(self) -> str:
        if not self.available:
            return f"[{self.scenario}] {self.name}: NOT AVAILABLE ({self.note})"
        target = f"{self.comparison} {_fmt(self.target)}{self.unit}"
        figure = self.figure.text(self.unit, self.target)
        text = f"[{self.scenario}] {self.name}: {figure}, target {target}"
        text += f": {self.status}"
        return f"{text} ({self.note})" if self.note else text

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["figure"] = {
            "median": self.figure.median,
            "min": self.figure.low,
            "max": self.figure.high,
            "samples": list(self.figure.samples),
        }
        data["met"] = self.met
        return data


def not_available(scenario: int, name: str, why: str) -> Verdict:
    return Verdict(scenario, name, Figure(()), ">=", 0, note=why, available=False)


def paired_ratio(
    runs: Sequence[dict[str, Any]], num: str, den: str, key: str, **where: Any
) -> Figure:
    """``key`` of target ``num`` ÷ that of target ``den``, one sample per repetition that
    measured both (the two runs of one repetition ran minutes apart at most, so drift
    cancels); ``where`` narrows the runs (e.g. ``clients=32``)."""
    chosen = [r for r in runs if all(r[k] == v for k, v in where.items())]
    of = {t: {r["repeat"]: float(r[key]) for r in chosen if r["target"] == t} for t in (num, den)}
    repeats = sorted(of[num].keys() & of[den].keys())
    return Figure(tuple(of[num][i] / of[den][i] if of[den][i] else inf for i in repeats))


def drain_seconds(
    first_due: float, last_done: float | None, done: int, expected: int, refused: int = 0
) -> float:
    """From the first booking due to the last step done; a step never done, or a booking
    refused (so never started), makes the drain infinitely long rather than short."""
    if last_done is None or done < expected or refused:
        return inf
    return last_done - first_due
