"""deploy/rabbitmq/definitions.json is what make_definitions.py generates from the topology
(so the broker's users, permissions and queues cannot drift from the code), and its password
hashes are RabbitMQ's salted SHA-256 of the example passwords in deploy/.env.example."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.messaging.definitions import (
    USERS,
    password_hash,
    password_matches,
    password_variable,
    permissions,
)
from shared.messaging.topology import owned_by, whole

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "rabbitmq" / "definitions.json"
SCRIPT = ROOT / "deploy" / "rabbitmq" / "make_definitions.py"


def example_passwords() -> dict[str, str]:
    text = (ROOT / "deploy" / ".env.example").read_text()
    values = dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.MULTILINE))
    return {user: values[password_variable(user)] for user in USERS}


def without_hashes(definitions: dict[str, Any]) -> dict[str, Any]:
    users = [{k: v for k, v in u.items() if k != "password_hash"} for u in definitions["users"]]
    return {**definitions, "users": users}


def test_the_committed_definitions_are_what_the_script_generates(tmp_path: Path) -> None:
    output = tmp_path / "definitions.json"
    subprocess.run([sys.executable, str(SCRIPT), "--output", str(output)], check=True, timeout=60)
    generated, committed = json.loads(output.read_text()), json.loads(COMMITTED.read_text())
    assert without_hashes(committed) == without_hashes(generated)
    passwords = example_passwords()
    for user in committed["users"]:
        assert password_matches(passwords[user["name"]], user["password_hash"]), user["name"]


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


def test_no_service_may_configure_another_services_names() -> None:
    granted = permissions()
    for user in ("notification", "email", "voucher"):
        others = [name for name in ("booking", "notification", "email", "voucher") if name != user]
        for other in others:
            assert not re.search(granted[user].configure, f"{other}.dlq"), (user, other)
            assert not re.search(granted[user].read, f"{other}.booking-events"), (user, other)
    assert granted["operator"].configure == "^$"


def test_every_name_has_exactly_one_owner() -> None:
    owners: dict[str, list[str]] = {}
    for service in ("booking", "notification", "email", "voucher"):
        topology = owned_by(service)
        for name in [e.name for e in topology.exchanges] + [q.name for q in topology.queues]:
            owners.setdefault(name, []).append(service)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
    assert set(owners) == {e.name for e in whole().exchanges} | {q.name for q in whole().queues}
