"""How big a suite runs: reduced inside `make test`, full in its own make target."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Size:
    full: bool

    def pick(self, reduced: Any, full: Any) -> Any:
        return full if self.full else reduced

    @classmethod
    def from_env(cls, variable: str) -> Size:
        """Full when ``variable`` (CHAOS_SIZE, COMPOSE_SIZE) is ``full``."""
        return cls(full=os.environ.get(variable, "reduced") == "full")
