"""PNG plots (matplotlib, headless) into bench/results/."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure as Figure_

from bench.config import RESULTS
from bench.stats import Figure


def bar_plot(name: str, title: str, bars: dict[str, Figure], ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = list(bars)
    medians = [bars[label].median for label in labels]
    errors = [
        [m - bars[label].low for m, label in zip(medians, labels, strict=True)],
        [bars[label].high - m for m, label in zip(medians, labels, strict=True)],
    ]
    ax.bar(labels, medians, yerr=errors, capsize=4, color="#4c72b0")
    for i, value in enumerate(medians):
        ax.annotate(
            f"{value:,.0f}",
            (i, value),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, name)


def timeline_plot(
    name: str,
    title: str,
    top: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    top_label: str,
    bottom: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    bottom_label: str,
) -> str:
    """Two stacked panels sharing the time axis (seconds since the start)."""
    fig, (upper, lower) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for label, (xs, ys) in top.items():
        upper.plot(xs, ys, label=label, linewidth=1.2)
    for label, (xs, ys) in bottom.items():
        lower.plot(xs, ys, label=label, linewidth=1.2)
    upper.set_title(title, fontsize=10)
    upper.set_ylabel(top_label)
    lower.set_ylabel(bottom_label)
    lower.set_xlabel("seconds since the burst started")
    for ax in (upper, lower):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, name)


def line_plot(
    name: str,
    title: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, (xs, ys) in series.items():
        style = "--" if label.startswith("ideal") else "-o"
        ax.plot(xs, ys, style, label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, name)


def _save(fig: Figure_, name: str) -> str:
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(RESULTS / name, dpi=100)
    plt.close(fig)
    return name
