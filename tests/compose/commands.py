"""What the compose tests take from the repository as a person would: the README's compose
commands, word for word, and an env file made from deploy/.env.example with free host ports,
fresh secrets and RabbitMQ definitions generated for them by the README's own command."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.processes import NO_RATE_LIMITS, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "deploy/compose.yaml"
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
MAKE_DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "make_definitions.py"


def readme_command(start: str) -> list[str]:
    """The README's ``docker compose -f deploy/compose.yaml <start>...`` command, split."""
    pattern = r"docker compose -f deploy/compose\.yaml [^`\n]+"
    for command in re.findall(pattern, README.read_text()):
        words = shlex.split(command, comments=True)
        if " ".join(words[4:]).startswith(start):
            return words
    raise AssertionError(f"the README gives no `docker compose -f {COMPOSE_FILE} {start}`")


def scales(command: list[str]) -> dict[str, int]:
    """The ``--scale service=N`` of a compose command."""
    pairs = [command[i + 1] for i, word in enumerate(command) if word == "--scale"]
    return {name: int(count) for name, _, count in (pair.partition("=") for pair in pairs)}


def write_env_file(directory: Path) -> dict[str, str]:
    """deploy/.env.example with a free host port for every port, a fresh value for every
    password, secret and token, the booking rate limits lifted, and RabbitMQ definitions
    generated for those passwords by the README's own command. Its values."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or key.startswith("#"):
            continue
        if key.endswith("_PORT"):
            value = str(free_port())
        elif any(word in key for word in ("PASSWORD", "SECRET", "TOKEN", "COOKIE")):
            value = secrets.token_hex(32)  # URL-safe; the services want 32 bytes at least
        values[key] = value
    # The load comes from one address, and the tests' guests share a domain: the rate limits
    # are lifted, as for every test that books many stays (tests/support/processes.py).
    values.update(NO_RATE_LIMITS)
    definitions = directory / "definitions.json"
    values["RABBITMQ_DEFINITIONS"] = str(definitions)
    env_file = directory / "compose.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    subprocess.run(
        [sys.executable, MAKE_DEFINITIONS, "--env-file", env_file, "--output", definitions],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
    )
    definitions.chmod(0o644)  # read by the rabbitmq user inside its container
    return values
