"""deploy/kubernetes/base runs the system as deploy/compose.yaml does (the same commands,
variables, secrets and hardening), scales each consumer of the registry on its own work
queue, and commits no secret."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from services.booking.bootstrap import ADMIN_POOL_SIZE, RELAY_POOL_SIZE
from services.booking.settings import BookingSettings
from services.notification.bootstrap import FEED_POOL_SIZE, RECORDS_POOL_SIZE
from shared import registry
from shared.messaging.topology import consumer_topology
from shared.settings import ConsumerSettings
from tests.support.kubernetes import ROOT, Document, find, rendered

COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
APP_ENV = dotenv_values(ROOT / "deploy" / "app.env")
RABBITMQ_CONF = (ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf").read_text()
APP_SERVICES = ("booking", *registry.NAMES)
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET")


def workloads() -> dict[str, dict[str, Any]]:
    """Each pod template of the image, by its name: the services and the migration Job."""
    found = {}
    for document in rendered():
        if document["kind"] in ("Deployment", "Job") and document["metadata"]["name"] != "mailpit":
            found[document["metadata"]["name"]] = document["spec"]["template"]["spec"]
    return found


def env(pod: dict[str, Any]) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = pod["containers"][0]["env"]
    return variables


def test_the_image_runs_every_service_and_the_migration_step_as_compose_does() -> None:
    pods = workloads()
    assert set(pods) == {*APP_SERVICES, "migrate"}
    for name, pod in pods.items():
        assert pod["containers"][0]["command"] == COMPOSE[name]["command"], name
        assert pod["containers"][0]["image"] == "hotel-booking:local"
        # Every variable compose sets, Kubernetes sets (the secrets among them by reference),
        # but those compose takes from deploy/.env with a default (booking's rate limits):
        # Kubernetes leaves the settings' defaults to an overlay.
        required = {k for k, v in COMPOSE[name]["environment"].items() if ":-" not in str(v)}
        assert required <= {v["name"] for v in env(pod)}, name


def test_each_pod_gets_the_secrets_compose_gives_it_and_no_other() -> None:
    for name, pod in workloads().items():
        given = set(re.findall(r"\$\{(\w+)", str(COMPOSE[name]["environment"])))
        wanted = {variable for variable in given if SECRET_NAME.search(variable)}
        by_reference = {v["name"] for v in env(pod) if "valueFrom" in v}
        assert by_reference == wanted, name


def test_no_secret_is_committed_and_every_reference_is_defined_before_it_is_used() -> None:
    assert not [d for d in rendered() if d["kind"] == "Secret"]
    for name, pod in workloads().items():
        defined: set[str] = set()
        for variable in env(pod):
            if SECRET_NAME.search(variable["name"]):
                ref = variable["valueFrom"]["secretKeyRef"]
                # The Secret made from deploy/.env: each value under its variable's name.
                if ref["name"] == "hotel-secrets":
                    assert ref["key"] == variable["name"], (name, variable)
            for used in re.findall(r"\$\((\w+)\)", variable.get("value", "")):
                assert used in defined, f"{name}: {variable['name']} uses {used} before it is set"
            defined.add(variable["name"])


def test_every_pod_is_hardened_as_the_compose_containers_are() -> None:
    for name, pod in workloads().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name  # the Dockerfile's user
        assert pod["enableServiceLinks"] is False, name
        box = pod["containers"][0]
        assert box["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert tmp["emptyDir"]["medium"] == "Memory"
        assert {"name": "tmp", "mountPath": "/tmp"} in box["volumeMounts"]


def test_every_container_has_resource_requests_and_limits() -> None:
    for document in rendered():
        if document["kind"] in ("Deployment", "Job"):
            for box in document["spec"]["template"]["spec"]["containers"]:
                resources = box["resources"]
                for side in ("requests", "limits"):
                    assert set(resources[side]) == {"cpu", "memory"}, (box["name"], side)


def test_the_services_are_probed_on_their_health_endpoints_and_given_time_to_start() -> None:
    startup_timeout = float(APP_ENV["STARTUP_TIMEOUT"] or 0)
    for name, pod in workloads().items():
        if name == "migrate":
            continue
        box = pod["containers"][0]
        (port,) = box["ports"]
        listens = {v["name"]: v.get("value") for v in env(pod)}
        assert str(port["containerPort"]) in (listens.get("PORT"), listens.get("HTTP_PORT"))
        assert "0.0.0.0" in (listens.get("HOST"), listens.get("HTTP_HOST"))
        for probe, path in [
            ("startupProbe", "/health/live"),
            ("livenessProbe", "/health/live"),
            ("readinessProbe", "/health/ready"),
        ]:
            assert box[probe]["httpGet"] == {"path": path, "port": port["name"]}, (name, probe)
        startup = box["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] > startup_timeout, name


@pytest.mark.parametrize("name", registry.NAMES)
def test_each_consumer_has_its_resources_and_scales_on_its_own_work_queue(name: str) -> None:
    documents = rendered()
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        find(documents, kind, name)
    scaled = find(documents, "ScaledObject", name)["spec"]
    assert scaled["scaleTargetRef"] == {"name": name}
    assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
    assert scaled["cooldownPeriod"] > 0
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == consumer_topology(name).queue
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert trigger["metadata"]["protocol"] == "amqp"  # counts ready messages, not unacked
    # KEDA reads the consumer's own AMQP_URL: it must be one it can resolve from its namespace.
    amqp_url = next(v for v in env(workloads()[name]) if v["name"] == "AMQP_URL")["value"]
    assert trigger["metadata"]["hostFromEnv"] == "AMQP_URL"
    assert ".hotel.svc:5672/hotel" in amqp_url


def test_booking_scales_on_cpu_and_keeps_a_replica_through_a_drain() -> None:
    documents = rendered()
    autoscaler = find(documents, "HorizontalPodAutoscaler", "booking")["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == "booking"
    assert autoscaler["metrics"][0]["resource"]["name"] == "cpu"
    assert autoscaler["minReplicas"] >= 2
    assert find(documents, "PodDisruptionBudget", "booking")["spec"]["minAvailable"] == 1
    assert "replicas" not in find(documents, "Deployment", "booking")["spec"]


def test_every_service_may_reach_only_what_it_needs() -> None:
    documents = rendered()
    default_deny = find(documents, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    for name in (*APP_SERVICES, "migrate"):
        policy = find(documents, "NetworkPolicy", name)["spec"]
        assert "Egress" in policy["policyTypes"]
        targets = [str(rule.get("to")) for rule in policy["egress"]]
        assert any("hotel-postgres" in target for target in targets), name
        reaches_broker = any("hotel-rabbitmq" in target for target in targets)
        assert reaches_broker == (name != "migrate"), name
        for need in registry.consumer_service(name).needs if name in registry.NAMES else ():
            assert any(f"'{need}'" in target for target in targets), (name, need)


def _rabbitmq(documents: list[Document]) -> dict[str, Any]:
    spec: dict[str, Any] = find(documents, "RabbitmqCluster", "hotel-rabbitmq")["spec"]
    return spec


def test_rabbitmq_runs_three_nodes_with_composes_configuration_and_definitions() -> None:
    spec = _rabbitmq(rendered())
    assert spec["replicas"] == 3
    config = spec["rabbitmq"]["additionalConfig"]
    assert RABBITMQ_CONF.strip() in config
    # Every quorum queue grows to every node, also one declared before all had joined.
    assert f"continuous_membership_reconciliation.target_group_size = {spec['replicas']}" in config
    path = re.search(r"^definitions\.local\.path = (\S+)$", RABBITMQ_CONF, re.MULTILINE)
    assert path is not None
    template = spec["override"]["statefulSet"]["spec"]["template"]["spec"]
    (mount,) = template["containers"][0]["volumeMounts"]
    assert mount["mountPath"] == path.group(1)
    (volume,) = template["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["secret"]["secretName"] == "hotel-rabbitmq-definitions"  # hashes: a Secret


def test_postgresql_has_three_instances_and_room_for_every_replica_at_its_maximum() -> None:
    documents = rendered()
    cluster = find(documents, "Cluster", "hotel-postgres")["spec"]
    assert cluster["instances"] == 3
    superuser = next(v for v in env(workloads()["migrate"]) if v["name"] == "POSTGRES_PASSWORD")
    assert superuser["valueFrom"]["secretKeyRef"]["name"] == cluster["superuserSecret"]["name"]
    consumer_pool = ConsumerSettings.model_fields["db_pool_size"].default
    per_replica = {
        "booking": BookingSettings.model_fields["db_pool_size"].default
        + RELAY_POOL_SIZE
        + ADMIN_POOL_SIZE,
        **dict.fromkeys(registry.NAMES, consumer_pool),
    }
    per_replica["notification"] += RECORDS_POOL_SIZE + FEED_POOL_SIZE
    most = find(documents, "HorizontalPodAutoscaler", "booking")["spec"]["maxReplicas"]
    needed = per_replica["booking"] * most + 1  # and the migration Job's one
    for name in registry.NAMES:
        needed += (
            per_replica[name] * find(documents, "ScaledObject", name)["spec"]["maxReplicaCount"]
        )
    assert int(cluster["postgresql"]["parameters"]["max_connections"]) > needed
