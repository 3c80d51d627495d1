"""deploy/rabbitmq/definitions.json is what make_definitions.py generates from the topology
(so the broker's users, permissions and queues cannot drift from the code), with no password
at all; a file generated from an env file holds RabbitMQ's salted SHA-256 of each password,
and the examples of deploy/.env.example are refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared import registry
from shared.messaging.definitions import (
    USERS,
    password_hash,
    password_matches,
    password_variable,
    permissions,
)
from shared.messaging.topology import (
    CONSUMERS,
    DEAD_LETTER_DELIVERY_LIMIT,
    DEFAULT_EXCHANGE,
    EVENTS_EXCHANGE,
    owned_by,
    whole,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "rabbitmq" / "definitions.json"
SCRIPT = ROOT / "deploy" / "rabbitmq" / "make_definitions.py"


def without_hashes(definitions: dict[str, Any]) -> dict[str, Any]:
    users = [{k: v for k, v in u.items() if k != "password_hash"} for u in definitions["users"]]
    return {**definitions, "users": users}


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def test_the_committed_definitions_are_the_reference_the_script_generates(tmp_path: Path) -> None:
    output = tmp_path / "definitions.json"
    assert run_script("--reference", "--output", str(output)).returncode == 0
    assert json.loads(output.read_text()) == json.loads(COMMITTED.read_text())


def test_the_committed_definitions_let_no_one_log_in() -> None:
    # No hash, no password login: the file cannot serve as anyone's default.
    committed = json.loads(COMMITTED.read_text())
    assert {user["password_hash"] for user in committed["users"]} == {""}


def test_definitions_from_an_env_file_hold_each_users_salted_hash(tmp_path: Path) -> None:
    passwords = {user: f"{user}-{'x' * 20}" for user in USERS}
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{password_variable(u)}={p}\n" for u, p in passwords.items()))
    output = tmp_path / "definitions.json"
    assert run_script("--env-file", str(env_file), "--output", str(output)).returncode == 0
    generated = json.loads(output.read_text())
    assert without_hashes(generated) == without_hashes(json.loads(COMMITTED.read_text()))
    for user in generated["users"]:
        assert password_matches(passwords[user["name"]], user["password_hash"]), user["name"]


def test_the_example_passwords_are_refused(tmp_path: Path) -> None:
    output = tmp_path / "definitions.json"
    result = run_script(
        "--env-file", str(ROOT / "deploy" / ".env.example"), "--output", str(output)
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: RABBITMQ_BOOKING_PASSWORD is a placeholder")
    assert len(result.stderr.splitlines()) == 1
    assert not output.exists()


def test_the_definitions_hold_the_whole_topology_with_its_arguments() -> None:
    committed = json.loads(COMMITTED.read_text())
    topology = whole()
    assert {e["name"] for e in committed["exchanges"]} == {e.name for e in topology.exchanges}
    assert {q["name"]: q["arguments"] for q in committed["queues"]} == {
        q.name: q.arguments for q in topology.queues
    }
    assert len(committed["bindings"]) == len(topology.bindings)


def test_the_password_hash_is_rabbitmqs_salted_sha256() -> None:
    # The worked example of RabbitMQ's documentation ("Credentials and Passwords", computing
    # a password hash): salt 908DC60A, password test12.
    assert password_hash("test12", bytes.fromhex("908dc60a")) == (
        "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    )
    assert not password_matches("wrong", password_hash("right"))


def test_the_operator_replays_through_the_retry_exchanges_never_the_default_one() -> None:
    operator = permissions()["operator"]
    assert not re.search(operator.write, DEFAULT_EXCHANGE)
    for names in CONSUMERS.values():
        assert re.search(operator.write, names.retry_exchange), names.service
        assert not re.search(operator.write, names.queue), names.service
    assert not re.search(operator.write, EVENTS_EXCHANGE)


def test_a_policy_gives_every_dead_letter_queue_its_delivery_limit() -> None:
    [policy] = json.loads(COMMITTED.read_text())["policies"]
    assert policy["definition"] == {"delivery-limit": DEAD_LETTER_DELIVERY_LIMIT}
    queues = [q["name"] for q in json.loads(COMMITTED.read_text())["queues"]]
    matched = [name for name in queues if re.search(policy["pattern"], name)]
    assert sorted(matched) == sorted(names.dead_letter_queue for names in CONSUMERS.values())


def test_no_service_may_configure_another_services_names() -> None:
    granted = permissions()
    for user in registry.NAMES:
        others = [name for name in ("booking", *registry.NAMES) if name != user]
        for other in others:
            assert not re.search(granted[user].configure, f"{other}.dlq"), (user, other)
            assert not re.search(granted[user].read, f"{other}.booking-events"), (user, other)
    assert granted["operator"].configure == "^$"


def test_every_name_has_exactly_one_owner() -> None:
    owners: dict[str, list[str]] = {}
    for service in ("booking", *registry.NAMES):
        topology = owned_by(service)
        for name in [e.name for e in topology.exchanges] + [q.name for q in topology.queues]:
            owners.setdefault(name, []).append(service)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    assert set(owners) == {e.name for e in whole().exchanges} | {q.name for q in whole().queues}
