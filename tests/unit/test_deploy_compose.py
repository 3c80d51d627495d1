"""deploy/compose.yaml and deploy/Dockerfile, checked without a Docker engine: the Compose
Specification's own JSON schema, then the structure that lets it run and scale."""

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
from shared.db.schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
APP_SERVICES = ("booking", *registry.NAMES)
CONSUMERS = registry.NAMES


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(compose())]
    assert errors == []


def test_the_schema_check_catches_a_misspelt_key() -> None:
    broken = compose()
    broken["services"]["email"]["depends_on"]["postgres"]["conditon"] = "service_healthy"
    schema = json.loads(SCHEMA.read_text())
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_it_runs_rabbitmq_with_management_postgres_mailpit_and_the_four_services() -> None:
    found = services()
    assert set(found) == {"rabbitmq", "postgres", "mailpit", "migrate", *APP_SERVICES}
    assert found["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert found["postgres"]["image"].startswith("postgres:")
    assert found["mailpit"]["image"].startswith("axllent/mailpit:")


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies() -> None:
    for name, service in services().items():
        if name != "migrate":  # a one-shot step: it completes, it is never "healthy"
            assert service["healthcheck"]["test"], name
        for dependency, rule in service.get("depends_on", {}).items():
            wanted = (
                "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            )
            assert rule == {"condition": wanted}, f"{name} -> {dependency}"
    for name in APP_SERVICES:
        mail = {"mailpit"} if name == "email" else set()
        expected = {"postgres", "rabbitmq", "migrate", *mail}
        assert set(services()[name]["depends_on"]) == expected, name
    assert set(services()["migrate"]["depends_on"]) == {"postgres"}


def test_the_migration_step_runs_once_before_the_services_as_the_only_superuser() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["python", "-m", "shared.db.provision"]
    assert migrate["restart"] == "no"
    assert migrate["image"] == services()["booking"]["image"]
    assert migrate["environment"]["DATABASE_URL"].startswith("postgresql://postgres:")
    roles = {f"POSTGRES_{schema.name.upper()}_PASSWORD" for schema in SCHEMAS}
    assert set(migrate["environment"]) == {"DATABASE_URL", *roles}
    for name, service in services().items():
        if name not in ("migrate", "postgres"):  # the server itself sets it up
            assert "POSTGRES_PASSWORD" not in json.dumps(service.get("environment", {})), name


def test_each_service_connects_to_postgresql_as_its_own_role_with_only_its_password() -> None:
    for name in APP_SERVICES:
        environment = services()[name]["environment"]
        assert environment["DATABASE_URL"].startswith(f"postgresql://{name}:"), name
        secrets = set(re.findall(r"POSTGRES_(\w+?)_PASSWORD", json.dumps(environment)))
        # The admin API's audit rows are the ops schema's, written as its role.
        extra = {"OPS"} if name == "booking" else set()
        assert secrets == {name.upper(), *extra}, name
    admin = services()["booking"]["environment"]["ADMIN_DATABASE_URL"]
    assert admin.startswith("postgresql://ops:")


def test_no_service_runs_in_dev_mode() -> None:
    shared = (DEPLOY / "app.env").read_text()
    assert "DEV_MODE" not in shared
    assert "MIGRATE_ON_START" not in shared
    for name, service in services().items():
        assert "DEV_MODE" not in service.get("environment", {}), name


def test_consumers_can_scale_no_container_name_and_no_host_port() -> None:
    for name in CONSUMERS:
        service = services()[name]
        assert "container_name" not in service, name
        assert "ports" not in service, name
    for name, service in services().items():
        # A published port is for a person on this machine only.
        assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", [])), name


def test_on_a_shared_host_the_consumers_yield_the_cpu_to_the_booking_api() -> None:
    docker_default = 1024
    assert services()["booking"].get("cpu_shares", docker_default) == docker_default
    for name in CONSUMERS:
        assert services()[name]["cpu_shares"] < docker_default / 10, name


def test_health_checks_ask_each_service_on_the_port_it_listens_on() -> None:
    for name in APP_SERVICES:
        service = services()[name]
        port = service["environment"]["PORT" if name == "booking" else "HTTP_PORT"]
        assert service["environment"].get("HOST", service["environment"].get("HTTP_HOST")) == (
            "0.0.0.0"
        )
        assert f"http://127.0.0.1:{port}/health/ready" in service["healthcheck"]["test"][-1]


def test_state_lives_in_named_volumes() -> None:
    declared = set(compose()["volumes"])
    assert declared == {"postgres-data", "rabbitmq-data", "mailpit-data"}
    for name in ("postgres", "rabbitmq", "mailpit"):
        sources = {volume.split(":")[0] for volume in services()[name]["volumes"]}
        assert sources & declared, name


def test_every_app_service_runs_its_module_from_the_one_image_with_the_env_file() -> None:
    images = set()
    for name in APP_SERVICES:
        service = services()[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        images.add(service["image"])
        for env_file in service["env_file"]:
            assert (DEPLOY / env_file).is_file(), env_file
    assert len(images) == 1
    for name in APP_SERVICES:
        service = services()[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]


def test_no_guest_each_service_connects_as_its_own_user_with_only_its_own_secret() -> None:
    for name in APP_SERVICES:
        environment = services()[name]["environment"]
        assert environment["AMQP_URL"].startswith(f"amqp://{name}:"), name
        secrets = set(re.findall(r"RABBITMQ_(\w+?)_PASSWORD", json.dumps(environment)))
        # The booking service hosts the admin API, whose dead-letter operations run as the
        # operator (ADMIN_AMQP_URL); every other secret stays with its own service.
        extra = {"OPERATOR"} if name == "booking" else set()
        assert secrets == {name.upper(), *extra}, name
    assert services()["booking"]["environment"]["ADMIN_AMQP_URL"].startswith("amqp://operator:")


def test_the_env_example_defines_every_variable_the_compose_file_uses() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used <= defined, used - defined


def test_every_file_the_dockerfile_copies_exists_and_it_runs_as_a_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, flags=re.MULTILINE)
    copies = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, flags=re.MULTILINE)
    assert copies
    for sources in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), source
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "deploy/.env"} <= set(ignored)


def test_deploy_holds_only_files_that_production_names() -> None:
    # What compose.yaml (and its cluster variant), the Dockerfile and the env example name is
    # production's; anything else (a local runner, a helper for the machine's own broker)
    # belongs in devrun/. The files .dockerignore keeps out are a person's own (their .env,
    # their definitions).
    named = "".join(
        (DEPLOY / f).read_text()
        for f in ("compose.yaml", "compose.cluster.yaml", "Dockerfile", ".env.example")
    )
    # So is what the Kubernetes base and the generator (of its parts and compose's) name.
    named += (DEPLOY / "kubernetes" / "base" / "kustomization.yaml").read_text()
    named += (DEPLOY / "generate.py").read_text()
    own = {ROOT / line for line in (ROOT / ".dockerignore").read_text().split()}
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    unnamed = [p.relative_to(ROOT) for p in files if p not in own and p.name not in named]
    assert files
    assert not unnamed, f"not production's: move to devrun/ ({unnamed})"


def test_the_local_runner_stays_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "devrun" in ignored
    assert (ROOT / "devrun" / "run.py").exists()
    assert "devrun" not in (DEPLOY / "Dockerfile").read_text()


def test_the_rabbitmq_definitions_are_yours_with_no_default_and_the_config_is_mounted() -> None:
    volumes = services()["rabbitmq"]["volumes"]
    # Required (":?"): no fallback to the committed reference, whose users have no password.
    [mount] = [v for v in volumes if v.endswith(":/etc/rabbitmq/definitions.json:ro")]
    assert mount.startswith("${RABBITMQ_DEFINITIONS:?")
    reference = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    assert {user["password_hash"] for user in reference["users"]} == {""}
    assert any(v.startswith("./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/") for v in volumes)
    config = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "definitions.local.path = /etc/rabbitmq/definitions.json" in config


def test_docker_compose_accepts_the_file_when_the_plugin_is_installed(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        check=False).returncode != 0:  # fmt: skip
        pytest.skip("the docker compose plugin is not installed (the schema test still ran)")
    env_file = tmp_path / ".env"
    env_file.write_text((DEPLOY / ".env.example").read_text())
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
