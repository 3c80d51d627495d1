"""What the compose tests take from the README and deploy/.env.example, checked without an
engine, so a README command that would misbehave is caught on any machine."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from tests.compose.commands import ENV_EXAMPLE, readme_command, scales, write_env_file


def test_the_readme_starts_the_system_with_three_email_and_two_voucher_replicas() -> None:
    command = readme_command("up --build")
    assert command[:4] == ["docker", "compose", "-f", "deploy/compose.yaml"]
    assert scales(command) == {"email": 3, "voucher": 2}


def test_the_readme_scale_command_keeps_every_other_scaled_service_as_it_was() -> None:
    # `up --scale email=5` alone puts voucher back to one replica: compose converges every
    # service to the scale the command gives, or to one.
    started, scaled = readme_command("up --build"), readme_command("up -d --no-recreate")
    assert scales(scaled)["email"] == 5
    assert set(scales(started)) <= set(scales(scaled))
    assert {k: v for k, v in scales(scaled).items() if k != "email"} == {
        k: v for k, v in scales(started).items() if k != "email"
    }


def test_the_test_env_file_has_fresh_secrets_free_ports_and_matching_definitions(
    tmp_path: Path,
) -> None:
    values = write_env_file(tmp_path)
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line
    )
    for key, value in values.items():
        if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN", "COOKIE")):
            assert value != example[key], key
            assert "CHANGE-ME" not in value, key
        if key.endswith("_PORT"):
            assert value != example[key], key
    definitions = json.loads(Path(values["RABBITMQ_DEFINITIONS"]).read_text())
    for user in definitions["users"]:
        password = values[f"RABBITMQ_{user['name'].upper()}_PASSWORD"]
        assert _rabbitmq_hash_of(password, user["password_hash"]), user["name"]
    assert Path(values["RABBITMQ_DEFINITIONS"]).stat().st_mode & 0o004  # the broker reads it


def _rabbitmq_hash_of(password: str, password_hash: str) -> bool:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    raw = base64.b64decode(password_hash)
    return hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]
