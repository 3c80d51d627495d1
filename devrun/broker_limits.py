"""Give the machine's own RabbitMQ (the one `make run` and `make test` use) the limits the
compose broker has: the settings of deploy/rabbitmq/rabbitmq.conf listed in LIMITS, written
to /etc/rabbitmq/conf.d/ (for its next start) and applied to the running broker now.

Run as root by `make services` (python -m devrun.broker_limits); prints one line when it
changes something. It lives with the local runner, not in deploy/: compose's broker reads
rabbitmq.conf itself, only the machine's own broker needs this.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "deploy" / "rabbitmq" / "rabbitmq.conf"
LOCAL_CONF = Path("/etc/rabbitmq/conf.d/50-hotel-booking.conf")
# Settings of rabbitmq.conf that also bind the local broker (the rest is compose's own:
# definitions, listeners, users).
LIMITS = ("max_message_size",)


def limits(conf: str) -> dict[str, int]:
    """The LIMITS settings of a rabbitmq.conf text."""
    found = {}
    for name in LIMITS:
        match = re.search(rf"^\s*{name}\s*=\s*(\d+)\s*$", conf, re.MULTILINE)
        if match is None:
            raise SystemExit(f"error: {CONF} sets no {name}")
        found[name] = int(match.group(1))
    return found


def _running_value(name: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "eval", f"application:get_env(rabbit, {name})."],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def main() -> int:
    wanted = limits(CONF.read_text())
    text = "# Written by devrun/broker_limits.py\n" + "".join(
        f"{name} = {value}\n" for name, value in wanted.items()
    )
    if not LOCAL_CONF.exists() or LOCAL_CONF.read_text() != text:
        LOCAL_CONF.parent.mkdir(parents=True, exist_ok=True)
        LOCAL_CONF.write_text(text)
    for name, value in wanted.items():
        if _running_value(name) != f"{{ok,{value}}}":
            # Read by each channel as it opens: new connections get the limit at once.
            expression = f"application:set_env(rabbit, {name}, {value})."
            subprocess.run(["rabbitmqctl", "eval", expression], capture_output=True, check=True)
            print(f"RabbitMQ: {name} set to {value} (as in {CONF.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
