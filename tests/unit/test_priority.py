"""shared/priority.py, in processes of their own: a niceness cannot be taken back.

Each test starts its processes in a session of their own, so each has an autogroup whatever
the session pytest runs in: a process in the first session of the machine (a CI runner
started by a daemon that never called setsid) is in no autogroup, and reads its
``/proc/self/autogroup`` as empty."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AUTOGROUP = Path("/proc/self/autogroup")
SCRIPT = """
import os
from shared import priority
priority.lower({niceness})
print(os.getpriority(os.PRIO_PROCESS, 0), open("/proc/self/autogroup").read().split()[-1])
"""

pytestmark = pytest.mark.skipif(not AUTOGROUP.exists(), reason="no autogroups on this kernel")


def _run(niceness: int) -> tuple[int, int]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(niceness=niceness)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        start_new_session=True,
    )
    nice, group = result.stdout.split()
    return int(nice), int(group)


# A session leader that starts a child sharing its session, and reports its autogroup's
# niceness before and after the child, then the child's own report.
SIBLINGS = """
import subprocess, sys
def group():
    return open("/proc/self/autogroup").read().split()[-1]
before = group()
child = subprocess.run([sys.executable, "-c", {script!r}], capture_output=True, text=True,
                       check=True)
print(before, group(), child.stdout)
"""


def test_a_session_leader_lowers_itself_and_its_autogroup() -> None:
    assert _run(19) == (19, 19)


def test_a_process_sharing_its_session_leaves_the_autogroup_to_its_siblings() -> None:
    script = SIBLINGS.format(script=SCRIPT.format(niceness=7))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        start_new_session=True,
    )
    before, after, nice, group = result.stdout.split()
    assert int(nice) == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    assert before == after == group == "0"


def test_niceness_zero_changes_nothing() -> None:
    assert _run(0) == (os.getpriority(os.PRIO_PROCESS, 0), 0)
