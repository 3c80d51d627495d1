"""shared/priority.py, in processes of their own: a niceness cannot be taken back."""

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


def _run(niceness: int, *, own_session: bool) -> tuple[int, int]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(niceness=niceness)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        start_new_session=own_session,
    )
    nice, group = result.stdout.split()
    return int(nice), int(group)


def _autogroup_niceness() -> int:
    return int(AUTOGROUP.read_text().split()[-1])


def test_a_session_leader_lowers_itself_and_its_autogroup() -> None:
    assert _run(19, own_session=True) == (19, 19)


def test_a_process_sharing_its_session_leaves_the_autogroup_to_its_siblings() -> None:
    before = _autogroup_niceness()
    nice, group = _run(7, own_session=False)
    assert nice == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    assert group == before == _autogroup_niceness()


def test_niceness_zero_changes_nothing() -> None:
    assert _run(0, own_session=True) == (os.getpriority(os.PRIO_PROCESS, 0), 0)
