"""Write RabbitMQ's definitions file (users, vhost, permissions, policies, topology) from the
code.

    python deploy/rabbitmq/make_definitions.py --env-file deploy/.env \\
        --output deploy/rabbitmq/definitions.local.json              # your broker's file
    python deploy/rabbitmq/make_definitions.py --reference           # the committed one

Passwords come from RABBITMQ_<USER>_PASSWORD in the env file, overridden by the environment;
a placeholder (any value of deploy/.env.example) is refused, as the services refuse it. The
committed deploy/rabbitmq/definitions.json is the reference: the same document with no
password hash at all, so no one can log in with it and it cannot serve as a default; a
test checks that it is what this script generates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.messaging.definitions import USERS, build, password_variable  # noqa: E402
from shared.secrets import weakness  # noqa: E402

REFERENCE = ROOT / "deploy" / "rabbitmq" / "definitions.json"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


def passwords(env_file: Path) -> dict[str, str]:
    values = {**read_env_file(env_file), **os.environ}
    found = {user: values.get(password_variable(user), "") for user in USERS}
    weak = [
        f"{password_variable(user)} {why}"
        for user, password in found.items()
        if password and (why := weakness(password))
    ]
    if weak:
        raise ValueError("; ".join(weak))
    return found


def render(env_file: Path | None) -> str:
    return json.dumps(build(passwords(env_file) if env_file else None), indent=2) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--env-file", type=Path, help="passwords from this env file")
    source.add_argument(
        "--reference", action="store_true", help="no passwords: the committed reference"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    output = args.output or (REFERENCE if args.reference else None)
    if output is None:
        parser.error("--output is required with --env-file")
    try:
        text = render(None if args.reference else args.env_file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    output.write_text(text)
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
