"""One module per scenario; each ``run(sizes)`` returns its verdicts, raw data and plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats import Verdict


@dataclass
class Outcome:
    verdicts: list[Verdict]
    raw: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
