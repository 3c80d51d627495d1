"""The documents of deploy/kubernetes/base/apps.yaml, in order: the shared settings, the
migration Job, the booking service, then each consumer of the registry (the parts they are
made of: deploy/k8s_manifests.py). deploy/generate.py writes them between marker lines."""

from __future__ import annotations

from typing import Any

import yaml
from dotenv import dotenv_values
from k8s_manifests import (
    APP_ENV,
    BOOKING_CPU_TARGET,
    BOOKING_PORT,
    BOOKING_REPLICAS,
    CONSUMER_REPLICAS,
    COOLDOWN_SECONDS,
    OPS_PORT,
    OUTSIDE,
    POLLING_SECONDS,
    RABBITMQ_EGRESS,
    READY_MESSAGES_PER_REPLICA,
    SUPERUSER,
    amqp_url,
    container,
    database_url,
    deployment,
    disruption_budget,
    metadata,
    network_policy,
    own_credentials,
    pod,
    role_credentials,
    secret,
    served,
    service,
    to_pods,
    value,
)

from shared.db.schemas import SCHEMAS
from shared.messaging.definitions import OPERATOR, password_variable
from shared.messaging.topology import consumer_topology
from shared.registry import CONSUMERS, ConsumerService


def app_config() -> dict[str, Any]:
    """deploy/app.env as a ConfigMap: the settings every container of the image shares."""
    data = {key: text or "" for key, text in dotenv_values(APP_ENV).items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config"},
        "data": data,
    }


def migration() -> list[dict[str, Any]]:
    """The migration step (python -m shared.db.provision), as compose's ``migrate``: the
    only pod with the superuser's password, which CloudNativePG keeps in its own Secret."""
    env = [
        secret("POSTGRES_PASSWORD", SUPERUSER, "password"),
        value("DATABASE_URL", database_url("postgres", "POSTGRES_PASSWORD")),
        *(secret(schema.password_variable()) for schema in SCHEMAS),
    ]
    box = container("migrate", ["python", "-m", "shared.db.provision"], env)
    box["resources"] = {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata("migrate", "migration"),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {"labels": metadata("migrate", "migration")["labels"]},
                "spec": pod([box], restartPolicy="Never"),
            },
        },
    }
    return [job, network_policy("migrate", "migration", None, [])]


def booking() -> list[dict[str, Any]]:
    env = [
        value("HOST", "0.0.0.0"),
        value("PORT", str(BOOKING_PORT)),
        *own_credentials("booking"),
        secret("ADMIN_TOKEN"),
        # The admin API's dead-letter operations run as the operator, and write their audit
        # rows as the ops schema's role (as in compose).
        secret(password_variable(OPERATOR)),
        value("ADMIN_AMQP_URL", amqp_url(OPERATOR)),
        *role_credentials("ops", "ADMIN_DATABASE_URL"),
        # The rate limits and FORWARDED_ALLOW_IPS keep the settings' defaults: an overlay
        # sets them (behind an ingress controller, its addresses are the proxies to trust).
    ]
    box = container("booking", ["python", "-m", "services.booking"], env)
    spec = pod([served(box, "http", BOOKING_PORT, ("500m", "2"), "256Mi")])
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata("booking", "api"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "booking"},
            "minReplicas": BOOKING_REPLICAS[0],
            "maxReplicas": BOOKING_REPLICAS[1],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": BOOKING_CPU_TARGET},
                    },
                }
            ],
        },
    }
    return [
        deployment("booking", "api", spec),
        service("booking", "api", "http", BOOKING_PORT),
        disruption_budget("booking", "api", minAvailable=1),
        autoscaler,
        network_policy("booking", "api", BOOKING_PORT, [RABBITMQ_EGRESS]),
    ]


def scaled_object(consumer: ConsumerService) -> dict[str, Any]:
    """KEDA scales the consumer on its work queue's ready messages, read over AMQP with the
    consumer's own URL (``hostFromEnv``: KEDA resolves the container's variables)."""
    name = consumer.name
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(name, "consumer"),
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": CONSUMER_REPLICAS[0],
            "maxReplicaCount": CONSUMER_REPLICAS[1],
            "pollingInterval": POLLING_SECONDS,
            "cooldownPeriod": COOLDOWN_SECONDS,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": COOLDOWN_SECONDS}}
                }
            },
            "triggers": [
                {
                    "type": "rabbitmq",
                    "metadata": {
                        # AMQP's queue.declare counts ready messages only (not unacked).
                        "protocol": "amqp",
                        "mode": "QueueLength",
                        "value": str(READY_MESSAGES_PER_REPLICA),
                        "queueName": consumer_topology(name).queue,
                        "hostFromEnv": "AMQP_URL",
                    },
                }
            ],
        },
    }


def consumer(service_: ConsumerService) -> list[dict[str, Any]]:
    name = service_.name
    env = [
        value("HTTP_HOST", "0.0.0.0"),
        value("HTTP_PORT", str(OPS_PORT)),
        *(secret(variable) for variable in service_.secrets),
        *own_credentials(name),
    ]
    box = container(name, ["python", "-m", f"services.{name}"], env)
    spec = pod([served(box, "ops", OPS_PORT, ("250m", "1"), "256Mi")])
    egress = [RABBITMQ_EGRESS, *(to_pods({"app.kubernetes.io/name": n}) for n in service_.needs)]
    if service_.outside_effects:
        egress.append(OUTSIDE)
    return [
        deployment(name, "consumer", spec),
        service(name, "consumer", "ops", OPS_PORT),
        # Never blocks a node drain: a consumer away only leaves its messages waiting.
        disruption_budget(name, "consumer", maxUnavailable=1),
        scaled_object(service_),
        network_policy(name, "consumer", OPS_PORT, egress),
    ]


def documents() -> list[dict[str, Any]]:
    found = [app_config(), *migration(), *booking()]
    for service_ in CONSUMERS:
        found += consumer(service_)
    return found


def lines() -> list[str]:
    text = yaml.safe_dump_all(documents(), sort_keys=False, width=100, explicit_start=True)
    return text.splitlines()
