"""The images deploy/compose.yaml names, pulled or built as stand-ins from this folder, on a
Debian base made by debootstrap; and the leftovers of killed test runs removed (test fixture
tooling for tests/compose; see prepare.py and README.md here)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.compose.standins.engine import PrepareError, apt_install, run, succeeds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
APP_DOCKERFILE = ROOT / "deploy" / "Dockerfile"
BASE_IMAGE = "standin/debian:bookworm"
LABEL = "org.hotel-booking.standin"
# Which folder here stands in for which image repository.
STANDINS = {
    "python": "python",
    "postgres": "postgres",
    "rabbitmq": "rabbitmq",
    "axllent/mailpit": "mailpit",
}
# The compose tests' own projects (tests/compose/system.py), and when one is surely left over.
TEST_PROJECT_PREFIX = "hbtest-"
PROJECT_LABEL = "com.docker.compose.project"
STALE_AFTER = 2 * 3600.0
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def image_labels(name: str) -> dict[str, str] | None:
    """The image's labels ({} when it has none), or None when there is no such image."""
    try:
        out = run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", name])
    except PrepareError:
        return None
    return json.loads(out) or {}


def ensure_base() -> list[str]:
    if image_labels(BASE_IMAGE) is not None:
        return []
    if os.geteuid() != 0:
        raise PrepareError(f"{BASE_IMAGE} is missing and only root can debootstrap it")
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "bookworm",
                str(rootfs),
                "http://deb.debian.org/debian",
            ]
        )
        # As in Debian's official images: packages installed in a build start no services.
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["bash"]',
                "--change",
                f"LABEL {LABEL}=base",
                "-",
                BASE_IMAGE,
            ],
            stdin=tar.stdout,
        )
        tar.wait()
    return [f"{BASE_IMAGE} made by debootstrap"]


def wanted_images() -> list[str]:
    """Every image deploy/compose.yaml runs but does not build, and deploy/Dockerfile's base."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"].values()
    names = {s["image"] for s in services if "image" in s and "build" not in s}
    names |= {
        line.split()[1]
        for line in APP_DOCKERFILE.read_text().splitlines()
        if line.upper().startswith("FROM ")
    }
    return sorted(names)


def standin_folder(image: str) -> Path:
    repository = image.rsplit(":", 1)[0]
    if repository not in STANDINS:
        raise PrepareError(f"deploy/compose.yaml names {image}: no stand-in for it in {HERE}")
    return HERE / STANDINS[repository]


def build_context(folder: Path, into: Path) -> str:
    """Copy the stand-in's folder (and the host's CA bundle, for pip) into ``into``; the
    digest of what it holds and of the base image, which tells a stand-in out of date."""
    shutil.copytree(folder, into)
    if folder.name == "python":
        shutil.copy(HOST_CA, into / "host-ca-certificates.crt")
    digest = hashlib.sha256(
        run(["docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]).encode()
    )
    for path in sorted(p for p in into.rglob("*") if p.is_file()):
        digest.update(path.relative_to(into).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_standins() -> list[str]:
    """Each wanted image: kept if present (pulled, or a stand-in of this folder's current
    files); else pulled; else built from its stand-in folder. Builds run side by side."""
    done: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        builds: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        for image in wanted_images():
            context = Path(tmp) / image.replace("/", "_").replace(":", "_")
            digest = build_context(standin_folder(image), context)
            labels = image_labels(image)
            if labels is not None and labels.get(LABEL) in (None, digest):
                continue  # the real image, or this stand-in already built
            if labels is None and succeeds(["docker", "pull", "-q", image], timeout=600):
                done.append(f"{image} pulled")
                continue
            log = context.with_suffix(".log")
            with log.open("wb") as out:
                command = [
                    "docker",
                    "build",
                    "--label",
                    f"{LABEL}={digest}",
                    "-t",
                    image,
                    str(context),
                ]
                builds.append((image, subprocess.Popen(command, stdout=out, stderr=out), log))
        for image, process, log in builds:
            if process.wait(timeout=900) != 0:
                raise PrepareError(
                    f"building the stand-in {image} failed: {log.read_text()[-3000:]}"
                )
            done.append(f"stand-in {image} built")
    return done


def remove_leftovers(older_than: float = STALE_AFTER) -> list[str]:
    """Compose projects of test runs that were killed before their own ``down -v``
    (``hbtest-*``, created more than ``older_than`` seconds ago, far longer than any run
    takes), and dangling images (earlier builds of the app image): a shared machine's disk."""
    out = run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={PROJECT_LABEL}",
            "--format",
            f'{{{{.Label "{PROJECT_LABEL}"}}}}|{{{{.CreatedAt}}}}',
        ],
    )
    now = time.time()
    stale = set()
    for line in out.splitlines():
        project, _, created = line.partition("|")
        when = datetime.strptime(created[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        if project.startswith(TEST_PROJECT_PREFIX) and now - when.timestamp() > older_than:
            stale.add(project)
    for project in sorted(stale):
        run(["docker", "compose", "--project-name", project, "down", "-v", "--remove-orphans"])
    pruned = run(["docker", "image", "prune", "--force"])
    done = [f"left-over test project {p} removed" for p in sorted(stale)]
    if "deleted" in pruned.lower():
        done.append("dangling images pruned")
    return done
