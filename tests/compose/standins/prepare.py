"""Make this machine able to run tests/compose: a container engine, the ``docker compose``
plugin, and every image deploy/compose.yaml names, pulled or, where nothing can be pulled,
built as a stand-in from this folder. TEST FIXTURE tooling (README.md here): nothing in it is
meant for a production machine.

    .venv/bin/python -m tests.compose.standins.prepare        # make compose-setup

Idempotent: each step runs only when what it makes is missing or out of date, so on a
machine that has everything it takes a few seconds. It prints one line. Exit status 0 when
the compose tests can run, and also where no engine can run at all (not Linux, not root,
not Debian: the line says why and the tests skip); 1 when a step that should have worked
failed (the line says which, with its output).

Steps, as root on Debian: Debian's docker.io (Engine 20.10) installed and ``dockerd``
started by hand with the default ulimits lowered (this machine refuses to raise rlimits, so
the engine's defaults make every container fail in setrlimit) and overlay2, else vfs; the
compose plugin from Debian 13's docker-compose package (Debian 12's is compose 1.x), taken
with apt from a private list of the trixie suite and copied into Docker's cli-plugins
folder; a Debian 12 base image (debootstrap + docker import); the stand-ins built on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import yaml

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
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_LOG = Path("/var/log/dockerd.log")
PLUGIN_DIR = Path("/usr/libexec/docker/cli-plugins")
# RLIMIT values the machine allows (it refuses to raise them to the engine's defaults).
ULIMITS = {
    "nofile": {"Name": "nofile", "Soft": 20000, "Hard": 20000},
    "nproc": {"Name": "nproc", "Soft": 4096, "Hard": 4096},
}


class PrepareError(Exception):
    """A step that should have worked here failed; the message says which, with output."""


def run(
    args: Sequence[str],
    *,
    timeout: float = 600,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: IO[bytes] | None = None,
) -> str:
    try:
        done = subprocess.run(
            list(args),
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
            env=env,
            stdin=stdin,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrepareError(f"{' '.join(args)}: {exc}") from exc
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        tail = (out + done.stderr.decode(errors="replace")).strip()[-3000:]
        raise PrepareError(f"{' '.join(args)} failed ({done.returncode}): {tail}")
    return out


def succeeds(args: Sequence[str], timeout: float = 30) -> bool:
    try:
        run(args, timeout=timeout)
    except PrepareError:
        return False
    return True


def engine_version() -> str | None:
    """The running engine's version and storage driver, or None when none answers."""
    try:
        return run(["docker", "info", "--format", "{{.ServerVersion}} {{.Driver}}"], timeout=20)
    except PrepareError:
        return None


def why_no_engine() -> str | None:
    """Why no engine can run here at all (the compose tests then skip), or None."""
    if engine_version():
        return None
    if sys.platform != "linux":
        return "not Linux: Docker Engine runs on Linux only"
    if os.geteuid() != 0:
        return "no Docker engine answers, and only root can install or start one"
    if not shutil.which("dockerd") and not (
        Path("/etc/debian_version").exists() and shutil.which("apt-get")
    ):
        return "no Docker engine installed, and this is not Debian (no docker.io to install)"
    return None


def apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)
    except PrepareError:  # a stale package list: refresh it once
        run(["apt-get", "update", "-q"], env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)


def write_daemon_json(storage_driver: str | None = None) -> None:
    """Add what this machine needs to the engine's configuration; keep everything else."""
    config = json.loads(DAEMON_JSON.read_text()) if DAEMON_JSON.exists() else {}
    config.setdefault("default-ulimits", ULIMITS)
    if storage_driver:
        config["storage-driver"] = storage_driver
    else:
        config.setdefault("storage-driver", "overlay2")
    DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
    DAEMON_JSON.write_text(json.dumps(config, indent=2) + "\n")


def start_dockerd(timeout: float = 60) -> bool:
    """Start dockerd in a session of its own (it outlives this script); True once it answers."""
    with DOCKERD_LOG.open("ab") as log:
        process = subprocess.Popen(
            ["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_version():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def ensure_engine() -> list[str]:
    if engine_version():
        return []
    done = []
    if not shutil.which("dockerd"):
        apt_install("docker.io")
        done.append("docker.io installed")
    write_daemon_json()
    if not start_dockerd():
        # overlay2 is not available everywhere (e.g. on some nested file systems): vfs is.
        write_daemon_json("vfs")
        if not start_dockerd():
            tail = DOCKERD_LOG.read_text(errors="replace")[-2000:]
            raise PrepareError(f"dockerd did not start (log {DOCKERD_LOG}): {tail}")
    return [*done, "dockerd started"]


def ensure_compose() -> list[str]:
    if succeeds(["docker", "compose", "version"]):
        return []
    if os.geteuid() != 0:
        raise PrepareError("the docker compose plugin is missing and only root can install it")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "archives" / "partial").mkdir(parents=True)
        (work / "sources.list").write_text("deb http://deb.debian.org/debian trixie main\n")
        # A private source list, package lists and cache: the machine's apt is not changed.
        private = [
            f"-oDir::Etc::SourceList={work / 'sources.list'}",
            "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State::Lists={work / 'lists'}",
            f"-oDir::Cache::Archives={work / 'archives'}",
            "-oDir::Cache::pkgcache=",
            "-oDir::Cache::srcpkgcache=",
            "-oAPT::Sandbox::User=root",
        ]
        run(["apt-get", *private, "-q", "update"])
        run(["apt-get", *private, "-q", "download", "docker-compose"], cwd=work)
        [deb] = work.glob("docker-compose_*.deb")
        run(["dpkg-deb", "-x", str(deb), str(work / "x")])
        PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy2(work / "x/usr/libexec/docker/cli-plugins/docker-compose", PLUGIN_DIR)
    run(["docker", "compose", "version"])
    return [f"compose plugin installed from {deb.name}"]


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


def prepare() -> str:
    """Everything the compose tests need; the one line that says what was done."""
    started = time.monotonic()
    reason = why_no_engine()
    if reason:
        return f"compose tests will skip: {reason}"
    done = [*ensure_engine(), *ensure_compose(), *remove_leftovers()]
    done += [*ensure_base(), *ensure_standins()]
    version = (engine_version() or "?").strip()
    compose = run(["docker", "compose", "version", "--short"]).strip()
    summary = "; ".join(done) if done else "everything was there"
    return (
        f"compose tests ready ({time.monotonic() - started:.0f} s): engine {version}, "
        f"compose {compose}; {summary}"
    )


def main() -> int:
    try:
        print(prepare())
    except PrepareError as exc:
        print(f"compose tests cannot run: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
