"""The parts the application's Kubernetes workloads are made of (deploy/k8s_apps.py puts
them together into deploy/kubernetes/base/apps.yaml): names, labels, secrets by reference,
the hardened pod, probes, resources, disruption budgets and network policies.

Every pod of the image runs as compose runs it (deploy/compose.yaml): uid 10001, read-only
root, an in-memory /tmp, no capability, no privilege escalation; each receives only its own
secrets, by reference to the Secret made from deploy/.env (README, "Kubernetes").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.db.schemas import schema
from shared.messaging.definitions import VHOST, password_variable

ROOT = Path(__file__).resolve().parents[1]
APP_ENV = ROOT / "deploy" / "app.env"
NAMESPACE = "hotel"
IMAGE = "hotel-booking"
SECRETS = "hotel-secrets"  # kubectl create secret generic ... --from-env-file=deploy/.env
SUPERUSER = "hotel-postgres-superuser"  # CloudNativePG's superuserSecret (basic-auth)
POSTGRES = "hotel-postgres"  # the CloudNativePG Cluster; its primary is <name>-rw
RABBITMQ = "hotel-rabbitmq"  # the RabbitmqCluster; its client Service has its name
# Namespace-qualified: KEDA's operator connects with the consumer's own AMQP_URL from its
# own namespace (hostFromEnv), where a bare Service name would not resolve.
AMQP_HOST = f"{RABBITMQ}.{NAMESPACE}.svc:5672"
OPS_PORT = 8080
BOOKING_PORT = 8000
# Each consumer scales on the ready messages of its work queue: one replica per this many
# waiting (about a second of one replica's work at the measured rates: README, "Capacity").
READY_MESSAGES_PER_REPLICA = 100
CONSUMER_REPLICAS = (1, 8)
BOOKING_REPLICAS = (2, 6)
BOOKING_CPU_TARGET = 70  # % of the CPU request, for the HorizontalPodAutoscaler
COOLDOWN_SECONDS = 300
POLLING_SECONDS = 15
# A process waits up to STARTUP_TIMEOUT (deploy/app.env) for PostgreSQL before it serves
# anything: the startup probe must allow longer.
STARTUP_PROBE = {"periodSeconds": 5, "failureThreshold": 30}


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "hotel-booking",
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def metadata(name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": labels(name, component)}


def secret(variable: str, name: str = SECRETS, key: str | None = None) -> dict[str, Any]:
    ref = {"name": name, "key": key or variable}
    return {"name": variable, "valueFrom": {"secretKeyRef": ref}}


def value(variable: str, text: str) -> dict[str, Any]:
    return {"name": variable, "value": text}


def database_url(role: str, password: str) -> str:
    return f"postgresql://{role}:$({password})@{POSTGRES}-rw:5432/booking"


def role_credentials(name: str, url: str = "DATABASE_URL") -> list[dict[str, Any]]:
    """The password of the schema's role, by reference, and the URL that connects as it."""
    own = schema(name)
    return [
        secret(own.password_variable()),
        value(url, database_url(own.role(), own.password_variable())),
    ]


def amqp_url(user: str) -> str:
    return f"amqp://{user}:$({password_variable(user)})@{AMQP_HOST}/{VHOST}"


def own_credentials(name: str) -> list[dict[str, Any]]:
    """A service's own database role and broker user, both named after it (Kubernetes
    expands $(VAR) from the variables defined before it)."""
    return [
        *role_credentials(name),
        secret(password_variable(name)),
        value("AMQP_URL", amqp_url(name)),
    ]


def http_probe(path: str, port: str, **extra: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "timeoutSeconds": 3, **extra}


def container(name: str, command: list[str], env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "command": command,
        "envFrom": [{"configMapRef": {"name": "app-config"}}],
        "env": env,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def pod(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        # A Service called "email" would otherwise put EMAIL_PORT=tcp://... into every
        # container's environment, where settings read their variables.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        # SHUTDOWN_GRACE (10 s) for the deliveries in hand, and the outbox relay's last pass.
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
        **extra,
    }


def served(
    box: dict[str, Any], port: str, number: int, cpu: tuple[str, str], memory: str
) -> dict[str, Any]:
    """A long-running container: its port, probes on /health/live and /health/ready, and
    its resources (memory: a limit over twice the peak RSS measured in bench scenario 8)."""
    return {
        **box,
        "ports": [{"name": port, "containerPort": number}],
        "startupProbe": http_probe("/health/live", port, **STARTUP_PROBE),
        "livenessProbe": http_probe("/health/live", port, periodSeconds=10, failureThreshold=3),
        "readinessProbe": http_probe("/health/ready", port, periodSeconds=10, failureThreshold=3),
        "resources": {
            "requests": {"cpu": cpu[0], "memory": "128Mi"},
            "limits": {"cpu": cpu[1], "memory": memory},
        },
    }


def deployment(name: str, component: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, component),
        # No replicas: the autoscaler owns the count, and `kubectl apply` must not reset it.
        "spec": {
            "selector": {"matchLabels": selector(name)},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(name, component)}, "spec": spec},
            **extra,
        },
    }


def service(name: str, component: str, port: str, number: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, component),
        "spec": {
            "selector": selector(name),
            "ports": [{"name": port, "port": number, "targetPort": port}],
        },
    }


def disruption_budget(name: str, component: str, **budget: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, component),
        "spec": {"selector": {"matchLabels": selector(name)}, **budget},
    }


def to_pods(labels_: dict[str, str], *ports: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"to": [{"podSelector": {"matchLabels": labels_}}]}
    if ports:
        rule["ports"] = [{"protocol": "TCP", "port": port} for port in ports]
    return rule


DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
POSTGRES_EGRESS = to_pods({"cnpg.io/cluster": POSTGRES}, 5432)
RABBITMQ_EGRESS = to_pods({"app.kubernetes.io/name": RABBITMQ}, 5672)
# Webhook receivers, ntfy servers and SMTP relays are configuration, not known here: any
# address outside the cluster's private ranges (an overlay narrows it to the real ones).
OUTSIDE = {
    "to": [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
            }
        }
    ]
}


def network_policy(
    name: str, component: str, ingress_port: int | None, egress: list[dict[str, Any]]
) -> dict[str, Any]:
    """Who may reach the service's port (anyone: probes, metrics, the API or the feed), and
    the only places it may reach: DNS, PostgreSQL, RabbitMQ and what it needs besides."""
    ingress = (
        [] if ingress_port is None else [{"ports": [{"protocol": "TCP", "port": ingress_port}]}]
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, component),
        "spec": {
            "podSelector": {"matchLabels": selector(name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [DNS, POSTGRES_EGRESS, *egress],
        },
    }
