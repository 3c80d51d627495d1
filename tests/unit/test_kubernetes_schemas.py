"""deploy/kubernetes/base renders with `kubectl kustomize`, and every document it renders is
valid, offline: built-in kinds against the Kubernetes JSON schemas of the oldest and newest
release we name, the operators' kinds against their vendored CRD schemas; strictly, so a
misspelt field fails here instead of being dropped by the API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kubernetes import (
    BASE,
    CRDS,
    EXAMPLE,
    Document,
    crd_schemas,
    errors,
    find,
    kustomize,
    rendered,
)


def test_kubectl_kustomize_renders_the_base() -> None:
    kinds = {d["kind"] for d in rendered()}
    assert {"RabbitmqCluster", "Cluster", "ScaledObject", "HorizontalPodAutoscaler"} <= kinds
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Job"} <= kinds


@pytest.mark.parametrize("folder", [BASE, EXAMPLE], ids=["base", "example overlay"])
def test_every_rendered_document_is_valid_against_its_schema(folder: Path) -> None:
    found = [message for document in rendered(folder) for message in errors(document)]
    assert found == []


def test_the_example_overlay_sets_the_image_and_the_smtp_relay_and_drops_mailpit() -> None:
    documents = rendered(EXAMPLE)
    assert not [d for d in documents if d["metadata"]["name"] == "mailpit"]
    assert find(documents, "ConfigMap", "app-config")["data"]["SMTP_HOST"] == "smtp.example.com"
    images = {
        box["image"]
        for d in documents
        if d["kind"] in ("Deployment", "Job")
        for box in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/hotel-booking:1.0.0"}


def test_every_resource_is_in_the_namespace_but_the_namespace_itself() -> None:
    for document in rendered():
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == "hotel", document["metadata"]


def test_the_crd_schemas_of_every_operator_kind_used_are_vendored() -> None:
    used = {(d["apiVersion"], d["kind"].lower()) for d in rendered() if "." in d["apiVersion"]}
    built_in = {"apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
    operators = {(api, kind) for api, kind in used if api not in built_in}
    assert operators == set(crd_schemas())
    readme = (CRDS.parent / "README.md").read_text()
    assert all(f"`crds/{path.name}`" in readme for path in CRDS.glob("*.json"))


def _broken(kind: str, name: str, path: str, key: str, value: object) -> Document:
    document = find(rendered(), kind, name)
    node = document
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[key] = value
    return document


@pytest.mark.parametrize(
    ("kind", "name", "path", "key", "value"),
    [
        # A misspelt field of a built-in kind and of each operator's kind, and a wrong type.
        ("Deployment", "email", "spec.template.spec.containers.0", "readinessProb", {}),
        ("ScaledObject", "email", "spec", "minReplicaCount", "one"),
        ("ScaledObject", "voucher", "spec", "maxReplicaCont", 8),
        ("RabbitmqCluster", "hotel-rabbitmq", "spec", "replica", 3),
        ("Cluster", "hotel-postgres", "spec", "instance", 3),
        ("HorizontalPodAutoscaler", "booking", "spec", "minReplica", 2),
    ],
)
def test_the_validation_catches_a_misspelt_field_or_a_wrong_type(
    kind: str, name: str, path: str, key: str, value: object
) -> None:
    assert errors(_broken(kind, name, path, key, value)) != []


def test_a_kustomization_that_names_a_missing_file_fails_to_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(AssertionError, match="kustomize"):
        kustomize(tmp_path)
