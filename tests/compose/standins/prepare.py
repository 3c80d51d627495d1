"""Make this machine able to run tests/compose: a container engine, the ``docker compose``
plugin, and every image deploy/compose.yaml names, pulled or, where nothing can be pulled,
built as a stand-in from this folder. TEST FIXTURE tooling (README.md here): nothing in it is
meant for a production machine.

    .venv/bin/python -m tests.compose.standins.prepare        # make compose-setup

Idempotent: each step runs only when what it makes is missing or out of date, so on a
machine that has everything it takes a few seconds. It prints one line. Exit status 0 when
the compose tests can run, and also where no engine can run at all (not Linux, not root,
not Debian: the line says why and the tests skip); 1 when a step that should have worked
failed (the line says which, with its output).

The steps: the engine and the compose plugin (engine.py), the leftovers of killed runs
removed, a Debian 12 base image and the images (images.py).
"""

from __future__ import annotations

import sys
import time

from tests.compose.standins.engine import (
    PrepareError,
    engine_version,
    ensure_compose,
    ensure_engine,
    run,
    why_no_engine,
)
from tests.compose.standins.images import ensure_base, ensure_standins, remove_leftovers

__all__ = ["PrepareError", "prepare", "why_no_engine"]


def prepare() -> str:
    """Everything the compose tests need; the one line that says what was done."""
    started = time.monotonic()
    reason = why_no_engine()
    if reason:
        return f"compose tests will skip: {reason}"
    done = [*ensure_engine(), *ensure_compose(), *remove_leftovers()]
    done += [*ensure_base(), *ensure_standins()]
    version = (engine_version() or "?").strip()
    compose = run(["docker", "compose", "version", "--short"]).strip()
    summary = "; ".join(done) if done else "everything was there"
    return (
        f"compose tests ready ({time.monotonic() - started:.0f} s): engine {version}, "
        f"compose {compose}; {summary}"
    )


def main() -> int:
    try:
        print(prepare())
    except PrepareError as exc:
        print(f"compose tests cannot run: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
