"""The container engine and the compose plugin, installed and started where missing (test
fixture tooling for tests/compose; see prepare.py).

As root on Debian: Debian's docker.io (Engine 20.10), ``dockerd`` started by hand in a
session of its own with the default ulimits lowered (this machine refuses to raise rlimits,
so the engine's defaults make every container fail in setrlimit) and overlay2, else vfs; the
compose plugin from Debian 13's docker-compose package (Debian 12's is compose 1.x), taken
with apt from a private list of the trixie suite and copied into Docker's cli-plugins folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

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
