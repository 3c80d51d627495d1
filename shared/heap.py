"""The garbage collector, settled once a process has started.

CPython's cyclic collector runs a young collection every 700 allocations of container
objects, and every so often a full one that walks every object alive: the modules, FastAPI's
routes, pydantic's validators, the clients, tens of thousands of objects that live as long
as the process. Under load those full walks were the booking API's longest pauses (its p99
under wrk went from 86-141 ms to 44-54 ms without them, bench scenario 1's load), and young
collections were 5% of its samples in py-spy.

So, once the process is built: one collection (what is garbage now must not be kept
forever), then :func:`gc.freeze` moves everything alive into a generation the collector never
walks (reference counting still frees those objects), and the young generation is collected
every ``YOUNG_THRESHOLD`` allocations instead of 700. A request's or a delivery's objects are
freed by reference counting as soon as it ends, so a young collection finds about the same
few live objects however rarely it runs: rarer runs cost less in all. Cyclic garbage waits
longer to be freed, at most ``YOUNG_THRESHOLD`` objects' worth (a few MB).

Only the processes' entry points call it, after they are built: a test process keeps
CPython's defaults.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    log.info(
        "heap settled: %d objects frozen, young collections every %d allocations",
        gc.get_freeze_count(),
        YOUNG_THRESHOLD,
    )
