"""The image's dependency locks (``make lock``) against pyproject.toml: every runtime
requirement pinned, with hashes, nothing else at the top, every other entry pulled in by one
of them; aiosmtpd only where it is needed (dev), and the Dockerfile installing the locks with
hash checking."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = "hotel-booking"


@dataclass
class Entry:
    requirement: Requirement
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def parse_lock(path: Path) -> dict[str, Entry]:
    """The entries of a pip requirements file with hashes and ``# via`` notes (uv's or
    pip-compile's format), by canonical name."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    in_via = False
    for raw in path.read_text().splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line:
            continue
        if not raw.startswith((" ", "#")):
            current = Entry(Requirement(line))
            entries[canonicalize_name(current.requirement.name)] = current
            in_via = False
        elif current is None:
            continue  # the header
        elif line.startswith("--hash="):
            current.hashes.append(line.removeprefix("--hash="))
        elif line.startswith("# via"):
            in_via = True
            rest = line.removeprefix("# via").strip()
            if rest:
                current.via.append(rest)
        elif in_via and line.startswith("#   "):
            current.via.append(line.removeprefix("#").strip())
    return entries


def source(via: str) -> str:
    """``hotel-booking (pyproject.toml)`` → the project; ``fastapi`` → fastapi."""
    return PROJECT if via.startswith(PROJECT) else canonicalize_name(via)


LOCKS = {
    "deploy/requirements.lock": [Requirement(r) for r in PYPROJECT["project"]["dependencies"]],
    "deploy/build-requirements.lock": [
        Requirement(r) for r in PYPROJECT["build-system"]["requires"]
    ],
}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_locked_to_a_version_it_allows_with_hashes(lock: str) -> None:
    entries = parse_lock(ROOT / lock)
    for requirement in LOCKS[lock]:
        entry = entries.get(canonicalize_name(requirement.name))
        assert entry is not None, f"{requirement} is missing from {lock}: run `make lock`"
        [pin] = entry.requirement.specifier
        assert pin.operator == "==", entry.requirement
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock} pins {entry.requirement}, outside {requirement}: run `make lock`"
        )
    for name, entry in entries.items():
        assert [s.operator for s in entry.requirement.specifier] == ["=="], name
        assert entry.hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in entry.hashes), name


def test_the_runtime_lock_holds_exactly_the_dependencies_of_pyproject_and_theirs() -> None:
    entries = parse_lock(ROOT / "deploy/requirements.lock")
    wanted = {canonicalize_name(r.name) for r in LOCKS["deploy/requirements.lock"]}
    direct = {name for name, e in entries.items() if PROJECT in map(source, e.via)}
    assert direct == wanted, "the lock is stale: run `make lock`"
    for name, entry in entries.items():
        # Every other entry is there for an entry of the lock, never for something gone.
        assert entry.via, name
        assert {source(v) for v in entry.via} <= {PROJECT, *entries}, (name, entry.via)


def test_aiosmtpd_is_a_dev_dependency_and_never_in_the_image() -> None:
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    dev = {
        canonicalize_name(Requirement(r).name)
        for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    assert "aiosmtpd" not in runtime
    assert "aiosmtpd" in dev  # the tests' SMTP server and `make run`'s mail catcher
    assert "aiosmtpd" not in parse_lock(ROOT / "deploy/requirements.lock")


def test_the_dockerfile_installs_the_locks_with_hashes_then_the_project_without_deps() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\\\n&]+)", dockerfile)
    assert [i.strip() for i in installs] == [
        "--require-hashes -r deploy/requirements.lock",
        "--require-hashes -r deploy/build-requirements.lock",
        "--no-deps --no-build-isolation .",
    ]
