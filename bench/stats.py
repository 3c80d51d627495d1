"""Medians, spreads, percentiles, and the verdict of one figure against its target."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
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

    def text(self, unit: str = "") -> str:
        if len(self.samples) == 1:
            return f"{_fmt(self.median)}{unit}"
        return f"{_fmt(self.median)}{unit} ({_fmt(self.low)}–{_fmt(self.high)})"


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value in (float("inf"), float("-inf")):
        return "∞"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


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
        text = f"[{self.scenario}] {self.name}: {self.figure.text(self.unit)}, target {target}"
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
