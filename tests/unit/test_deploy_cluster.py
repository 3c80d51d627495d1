"""deploy/compose.cluster.yaml, the three-node RabbitMQ cluster on top of deploy/compose.yaml,
checked without a Docker engine (the cluster suite, tests/cluster, runs it): the Compose
Specification's schema, the nodes as compose.yaml's broker, the peer discovery config, and
every service on the three nodes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared import registry
from shared.messaging import addresses

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CLUSTER_FILE = DEPLOY / "compose.cluster.yaml"
NODES = ("rabbitmq", "rabbitmq-2", "rabbitmq-3")


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def cluster() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load(CLUSTER_FILE)["services"]
    return found


def test_the_cluster_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(load(CLUSTER_FILE))]
    assert errors == []


def test_the_two_new_nodes_run_the_broker_of_compose_yaml_with_its_config_and_definitions() -> None:
    base = load(DEPLOY / "compose.yaml")["services"]["rabbitmq"]
    for node in NODES[1:]:
        service = cluster()[node]
        assert service["image"] == base["image"]
        assert service["hostname"] == node  # the node name, rabbit@<hostname>
        assert service["healthcheck"] == base["healthcheck"]
        # The same config and definitions mounted at the same places (the definitions'
        # variable without compose.yaml's long hint: an error message is said once).
        targets = {v.split(":", 1)[0][:24]: v.rsplit(":", 2)[1] for v in service["volumes"]}
        for volume in base["volumes"]:
            if not volume.startswith("rabbitmq-data:"):
                assert targets[volume.split(":", 1)[0][:24]] == volume.rsplit(":", 2)[1], node
        assert f"{node}-data:/var/lib/rabbitmq" in service["volumes"]
        assert service["ports"][0].startswith("127.0.0.1:")
        # Started together, nodes could each form a cluster of their own.
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_every_node_gets_the_cluster_config_and_the_same_cookie() -> None:
    mount = "./rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/30-cluster.conf:ro"
    for node in NODES:
        assert mount in cluster()[node]["volumes"], node
        environment = cluster()[node]["environment"]
        assert environment["RABBITMQ_ERLANG_COOKIE"].startswith("${RABBITMQ_ERLANG_COOKIE:?")
        # Peers must agree on how long a silence means a node is gone.
        assert environment["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] == "-kernel net_ticktime 20"


def test_peer_discovery_lists_the_three_nodes_and_a_minority_pauses() -> None:
    config = (DEPLOY / "rabbitmq" / "cluster.conf").read_text()
    assert "cluster_formation.peer_discovery_backend = classic_config" in config
    listed = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$", config, re.M)
    assert listed == [f"rabbit@{node}" for node in NODES]
    assert "cluster_partition_handling = pause_minority" in config
    replicas = " ".join(cluster()["rabbitmq-replicas"]["command"])
    assert "for node in " + " ".join(NODES) + ";" in replicas


def test_every_service_lists_the_three_nodes_and_starts_once_the_queues_have_replicas() -> None:
    for name in ("booking", *registry.NAMES):
        service = cluster()[name]
        urls = [service["environment"]["AMQP_URL"]]
        if name == "booking":
            urls.append(service["environment"]["ADMIN_AMQP_URL"])
        for url in (re.sub(r"\$\{[^}]*\}", "password", u) for u in urls):
            hosts = [u.split("@", 1)[1].split("/", 1)[0] for u in addresses.split(url)]
            assert hosts == [f"{node}:5672" for node in NODES], name
        condition = service["depends_on"]["rabbitmq-replicas"]["condition"]
        assert condition == "service_completed_successfully", name
    replicas = cluster()["rabbitmq-replicas"]["depends_on"]
    assert {node: d["condition"] for node, d in replicas.items()} == dict.fromkeys(
        NODES, "service_healthy"
    )


def test_the_env_example_defines_every_variable_the_cluster_file_uses() -> None:
    used = set(re.findall(r"\$\{(\w+)", CLUSTER_FILE.read_text()))
    example = (DEPLOY / ".env.example").read_text()
    assert used <= set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))


def test_docker_compose_merges_the_two_files_when_the_plugin_is_installed(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        check=False).returncode != 0:  # fmt: skip
        pytest.skip("the docker compose plugin is not installed (the schema test still ran)")
    env_file = tmp_path / ".env"
    env_file.write_text((DEPLOY / ".env.example").read_text())
    files = ["-f", str(DEPLOY / "compose.yaml"), "-f", str(CLUSTER_FILE)]
    result = subprocess.run(
        [docker, "compose", *files, "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)["services"]
    assert {"rabbitmq", "rabbitmq-2", "rabbitmq-3", "rabbitmq-replicas"} <= set(merged)
    # compose.yaml's own dependencies stay: the overrides add to them.
    assert {"postgres", "rabbitmq", "migrate", "rabbitmq-replicas"} <= set(
        merged["email"]["depends_on"]
    )
    assert "rabbitmq-2:5672" in merged["voucher"]["environment"]["AMQP_URL"]
