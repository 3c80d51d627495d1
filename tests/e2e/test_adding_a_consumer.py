"""The README's "Adding a consumer", followed to the letter: in a copy of the tree, the files
the section shows are written from the README itself and its one line added to the registry,
the generated files regenerated; nothing else may change. Then the booking service and the
new consumer run from the copy as real processes: a booking is credited, a transient failure
(its table locked) is retried, one that outlasts the retries is dead-lettered, and
`bookingctl` replays it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from tests.support.infra import TestEnv
from tests.support.kubernetes import errors, kustomize
from tests.support.processes import NO_RATE_LIMITS, ROOT, free_port, start, stop, wait_http
from tests.support.stack import spread_booking

pytestmark = pytest.mark.e2e
SECTION = re.compile(r"^## Adding a consumer\n(.*?)^## ", re.MULTILINE | re.DOTALL)
BLOCK = re.compile(r"^( *)```\w+ (file|line)=(\S+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
GENERATED = {
    "deploy/compose.yaml",
    "deploy/compose.cluster.yaml",
    "deploy/.env.example",
    "deploy/rabbitmq/definitions.json",
    "deploy/kubernetes/base/apps.yaml",
}


def _git(tree: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True).stdout


def _copy_of_the_tree(target: Path) -> Path:
    files = _git(ROOT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git(target, "init", "-q")
    _git(target, "add", "-A")
    _git(target, "commit", "-qm", "the tree as it is")
    return target


def _follow_the_readme(tree: Path) -> None:
    section = SECTION.search((ROOT / "README.md").read_text())
    assert section is not None, "the README has no 'Adding a consumer' section"
    blocks = BLOCK.findall(section.group(1))
    assert blocks, "the section shows no file"
    for indent, kind, path, body in blocks:
        text = "".join(line.removeprefix(indent) + "\n" for line in body.splitlines())
        if kind == "file":
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_text(text)
            if path.endswith(".py"):  # "with an empty __init__.py"
                (tree / path).parent.joinpath("__init__.py").touch()
        else:  # the one line, an entry at the end of CONSUMERS
            registry = (tree / path).read_text()
            end = registry.index("\n)\n", registry.index("CONSUMERS: tuple"))
            entry = f"    {text.strip()},\n"
            (tree / path).write_text(registry[: end + 1] + entry + registry[end + 1 :])
    for command in (["deploy/generate.py"], ["deploy/rabbitmq/make_definitions.py", "--reference"]):
        done = subprocess.run([sys.executable, *command], cwd=tree, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"


def test_the_readme_section_changes_one_folder_one_line_and_the_generated_files(
    tmp_path: Path,
) -> None:
    tree = _copy_of_the_tree(tmp_path / "tree")
    _follow_the_readme(tree)
    changed = {line[3:] for line in _git(tree, "status", "--porcelain", "-uall").splitlines()}
    new = {name for name in changed if name.startswith("services/loyalty/")}
    assert changed - new == {"shared/registry.py", *GENERATED}
    assert new == {
        "services/loyalty/__init__.py",
        "services/loyalty/__main__.py",
        "services/loyalty/handlers.py",
        "services/loyalty/migrations/001_points.sql",
    }
    assert _git(tree, "diff", "--numstat", "shared/registry.py").split()[:2] == ["1", "0"]
    assert "\n  loyalty:\n" in (tree / "deploy" / "compose.yaml").read_text()
    kubernetes = (tree / "deploy" / "kubernetes" / "base" / "apps.yaml").read_text()
    assert "queueName: loyalty.booking-events\n" in kubernetes
    rendered = [d for d in yaml.safe_load_all(kustomize(tree / "deploy/kubernetes/base")) if d]
    assert [message for document in rendered for message in errors(document)] == []


@contextmanager
def _running(tree: Path, name: str, env: dict[str, str], logs: Path) -> Iterator[None]:
    log = logs / f"{name}.log"
    process = start(["-m", f"services.{name}"], {"PYTHONPATH": str(tree), **env}, log, tree)
    try:
        yield
    finally:
        stop(process)


@contextmanager
def _table_locked(env: TestEnv) -> Iterator[None]:
    """loyalty.points locked by another transaction: each credit waits, then times out."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(env.database_url))
    try:
        loop.run_until_complete(
            conn.execute("BEGIN; LOCK TABLE loyalty.points IN ACCESS EXCLUSIVE MODE")
        )
        yield
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def _points(env: TestEnv) -> list[int]:
    async def read() -> list[int]:
        conn = await asyncpg.connect(env.database_url)
        try:
            return [r["points"] for r in await conn.fetch("SELECT points FROM loyalty.points")]
        finally:
            await conn.close()

    return asyncio.run(read())


def _step(api: str, booking_id: str) -> dict[str, Any]:
    step: dict[str, Any] = httpx.get(f"{api}/bookings/{booking_id}").json()["fulfilment"]["loyalty"]
    return step


def _wait_for(what: str, condition: Any, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_new_consumer_receives_retries_dead_letters_and_is_replayed(
    tmp_path: Path, env: TestEnv, logs: Path
) -> None:
    tree = _copy_of_the_tree(tmp_path / "tree")
    _follow_the_readme(tree)
    common = {"DATABASE_URL": env.database_url, "AMQP_URL": env.amqp_url(), "HTTP_PORT": "0"}
    port = free_port()
    booking = {**common, "PORT": str(port), "OUTBOX_SWEEP_INTERVAL": "0.2", **NO_RATE_LIMITS}
    loyalty = {
        **common,
        "MAX_ATTEMPTS": "3",
        "RETRY_BASE_DELAY": "0.2",
        "RETRY_MAX_DELAY": "0.5",
        "DB_COMMAND_TIMEOUT": "1",  # a credit waiting on the locked table fails after 1 s
    }
    api = f"http://127.0.0.1:{port}"
    with _running(tree, "booking", booking, logs), _running(tree, "loyalty", loyalty, logs):
        wait_http(f"{api}/openapi.json", timeout=60)

        def book(i: int) -> str:
            answer = httpx.post(f"{api}/bookings", json=spread_booking(i), timeout=10)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["id"])

        first = book(1)
        _wait_for("the first credit", lambda: _step(api, first)["status"] == "done")
        with _table_locked(env):
            second = book(2)
            _wait_for("a retry", lambda: _step(api, second)["status"] == "retrying")
        _wait_for("the retried credit", lambda: _step(api, second)["status"] == "done")
        with _table_locked(env):
            third = book(3)
            _wait_for("the dead letter", lambda: _step(api, third)["status"] == "failed")
        replay = subprocess.run(
            [sys.executable, "-m", "services.bookingctl", "dlq", "replay", "loyalty", "--all"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree), **common},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        _wait_for("the replayed credit", lambda: _step(api, third)["status"] == "done")
    assert _points(env) == [1, 1, 1]  # one night each, each credited once
