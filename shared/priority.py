"""A consumer's CPU priority: on a machine it shares with the booking API, fulfilment is the
work that can wait (its queue holds it), a request is not.

``NICENESS`` (0-19) lowers the process's priority at start, before any thread exists, so every
thread it makes inherits it. Linux groups the processes of each session into an *autogroup*
and shares the CPU between autogroups first, so a niceness alone changes nothing against the
API when each runs in a session of its own (as the local runner, the benchmarks and the tests
start them): a process that leads its session sets its autogroup's niceness too. A process
that does not (started from a shell, sharing its session) leaves the autogroup alone, since it
would lower its siblings with it. In containers each service is a cgroup of its own, where
neither applies: compose gives the consumers ``CONTAINER_CPU_SHARES`` instead.

Measured (bench scenario 5's burst, 5,000 bookings in 10 s with the three consumers on the
same 2 cores): the API's p50 1,626 ms and p99 4,844 ms at niceness 0; 51 ms and 491 ms at 19,
while the consumers drained the same backlog, on the CPU the API left. The price is paid by
fulfilment when the machine is near saturation: end to end at 100 bookings/s (scenario 3),
p50 897 ms at 0 against 2,190 ms at 19 (README, "What limits it").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
BACKGROUND = 19  # what the local runner and the benchmarks give the consumers
# The same in compose (deploy/generate.py): docker's default is 1,024, and a niceness of 19
# weighs 15 against 0's 1,024; cgroup v2 turns 16 shares into weight 1 against 1,024's 39.
CONTAINER_CPU_SHARES = 16
AUTOGROUP = Path("/proc/self/autogroup")


def lower(niceness: int) -> None:
    """Run this process (and its session's autogroup, if it leads it) at ``niceness``; a
    process already nicer stays as it is."""
    if niceness <= 0:
        return
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    grouped = os.getsid(0) == os.getpid() and AUTOGROUP.exists()
    if grouped:
        try:
            AUTOGROUP.write_text(str(niceness))
        except OSError as exc:  # autogroups disabled, or a kernel that refuses: nice alone
            log.info("niceness %d for this process only: %s", niceness, exc)
            grouped = False
    actual = os.getpriority(os.PRIO_PROCESS, 0)  # higher than asked if it already was
    log.info("running at niceness %d%s", actual, " (its autogroup too)" if grouped else "")
