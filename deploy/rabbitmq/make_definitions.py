"""Write RabbitMQ's definitions file (users, vhost, permissions, topology) from the code.

    python deploy/rabbitmq/make_definitions.py                       # the committed example
    python deploy/rabbitmq/make_definitions.py --env-file deploy/.env \\
        --output deploy/rabbitmq/definitions.local.json              # your real passwords

Passwords come from RABBITMQ_<USER>_PASSWORD in the env file, overridden by the environment.
The committed deploy/rabbitmq/definitions.json uses the example passwords of
deploy/.env.example; a test checks that it is what this script generates.
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

DEFAULT_ENV_FILE = ROOT / "deploy" / ".env.example"
DEFAULT_OUTPUT = ROOT / "deploy" / "rabbitmq" / "definitions.json"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values


def passwords(env_file: Path) -> dict[str, str]:
    values = {**read_env_file(env_file), **os.environ}
    return {user: values.get(password_variable(user), "") for user in USERS}


def render(env_file: Path = DEFAULT_ENV_FILE) -> str:
    return json.dumps(build(passwords(env_file)), indent=2) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    try:
        text = render(args.env_file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
