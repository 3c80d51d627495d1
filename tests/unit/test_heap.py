"""shared/heap.py, in a process of its own: settling changes the collector for the whole
process, which a test process keeps at CPython's defaults."""

from __future__ import annotations

import subprocess
import sys

from shared.heap import YOUNG_THRESHOLD

SCRIPT = """
import gc, weakref
from shared import heap

class Node: pass

alive = [Node() for _ in range(1000)]
cycle = Node(); cycle.me = cycle
collected = []
weakref.finalize(cycle, collected.append, True)
del cycle
heap.settle()
print(gc.get_freeze_count() >= len(alive), bool(collected), gc.get_threshold()[0])
"""


def test_settling_freezes_what_is_alive_frees_the_garbage_first_and_collects_young_less_often() -> (
    None
):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    frozen, garbage_freed, young = result.stdout.split()
    assert frozen == "True"
    # Frozen garbage would never be freed: the cycle made before settling is collected.
    assert garbage_freed == "True"
    assert int(young) == YOUNG_THRESHOLD
