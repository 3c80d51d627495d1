"""The capacity model (bench/capacity.py): the README's table is what it computes from the
committed benchmark figures, and it follows them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bench import capacity
from bench.config import RESULTS
from tests.support.processes import ROOT

SUMMARY: dict[str, Any] = json.loads((RESULTS / "summary.json").read_text())


def test_the_readme_table_is_what_the_model_computes_from_the_committed_figures() -> None:
    table = capacity.table([50, 200, 500, 1000], SUMMARY)
    assert table in (ROOT / "README.md").read_text()


def test_a_consumer_that_keeps_less_in_flight_needs_more_replicas() -> None:
    slower = copy.deepcopy(SUMMARY)
    for row in slower["verdicts"]:
        if row["scenario"] == 4 and row["name"].startswith("email: in flight"):
            row["figure"]["median"] /= 2
    assert capacity.per_replica(slower)["email"][0] == capacity.per_replica(SUMMARY)["email"][0] / 2
    assert capacity.table([1000], slower) != capacity.table([1000], SUMMARY)


def test_replicas_keep_headroom_and_never_drop_to_zero() -> None:
    assert capacity.replicas(70, 100) == 1  # 70% of one replica
    assert capacity.replicas(71, 100) == 2
    assert capacity.replicas(0, 100) == 1


def test_a_summary_without_a_consumers_figure_is_refused() -> None:
    partial = {"verdicts": [r for r in SUMMARY["verdicts"] if r["scenario"] != 4]}
    with pytest.raises(ValueError, match="no scenario 4 figure"):
        capacity.per_replica(partial)
