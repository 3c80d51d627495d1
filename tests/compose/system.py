"""The composed system under test: deploy/compose.yaml run by the README's own commands, as a
project of its own (COMPOSE_PROJECT_NAME) with free host ports and fresh secrets in an env
file of its own (COMPOSE_ENV_FILES), so it never meets the machine's own PostgreSQL and
RabbitMQ, another run, or a person's deploy/.env.

It is seen the way the chaos suite's invariants see a system (tests/chaos/observed.py):
PostgreSQL at its container's address on the project's network (it publishes no port; the
host routes to the bridge), RabbitMQ as admin through its published AMQP port, rabbitmqctl
through ``docker compose exec``, the mail through the mail catcher's HTTP API, and each
service's log through ``docker compose logs``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared import registry
from tests.chaos.infra import QueueStats, queue_stats
from tests.compose.commands import COMPOSE_FILE, ROOT, readme_command, write_env_file
from tests.compose.standins.images import TEST_PROJECT_PREFIX
from tests.support.processes import DEV_ENV

APP_SERVICES = ("booking", *registry.NAMES)
VHOST = "hotel"


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    service: str
    state: str
    health: str

    @property
    def running(self) -> bool:
        return self.state == "running"


def parse_ps(out: str) -> list[Container]:
    """``docker compose ps --format json``: one object per line (an array before 2.21)."""
    text = out.strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    return [
        Container(r["ID"], r["Name"], r["Service"], r["State"], r.get("Health", "")) for r in rows
    ]


@dataclass(frozen=True)
class DatabaseEnv:
    database_url: str


@dataclass
class ComposedService:
    """One compose service, all its replicas together, as the invariants look at it: plain
    properties, as they read them, each a blocking ``docker compose`` call of a fraction of
    a second (they are read while the system drains, when nothing else waits on the loop)."""

    system: ComposedSystem
    name: str

    @property
    def alive(self) -> bool:
        return any(
            c.running
            for c in parse_ps(self.system.compose_sync("ps", "-a", "--format", "json", self.name))
        )

    @property
    def log(self) -> Path:
        """Every replica's log, as of now."""
        path = self.system.workdir / f"{self.name}.log"
        path.write_text(self.system.compose_sync("logs", "--no-color", self.name))
        return path


@dataclass
class Mailbox:
    """The mail catcher's messages as the invariants read them (``m["Message-ID"]``), asked
    of its API whenever they are read."""

    url: str

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"Message-ID": f"<{m['MessageID']}>"} for m in read_mail(self.url)]


def read_mail(url: str) -> list[dict[str, Any]]:
    """Every message the mail catcher at ``url`` holds: Mailpit's summaries, page by page."""
    found: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            page = client.get("/api/v1/messages", params={"start": len(found), "limit": 500})
            page.raise_for_status()
            batch = page.json()["messages"]
            if not batch:
                return found
            found += batch


@dataclass
class ComposedSystem:
    project: str
    workdir: Path
    values: dict[str, str]
    env: DatabaseEnv = DatabaseEnv("")
    postgres_address: str = ""
    services: dict[str, ComposedService] = field(default_factory=dict)

    @classmethod
    def create(cls, workdir: Path) -> ComposedSystem:
        system = cls(
            f"{TEST_PROJECT_PREFIX}{secrets.token_hex(4)}", workdir, write_env_file(workdir)
        )
        system.services = {name: ComposedService(system, name) for name in APP_SERVICES}
        return system

    # --- where things are ------------------------------------------------------------
    def port(self, key: str) -> int:
        return int(self.values[key])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port('BOOKING_PORT')}"

    @property
    def mailpit_url(self) -> str:
        return f"http://127.0.0.1:{self.port('MAILPIT_PORT')}"

    def user_url(self, user: str, host: str = "127.0.0.1") -> str:
        password = self.values[f"RABBITMQ_{user.upper()}_PASSWORD"]
        return f"amqp://{user}:{password}@{host}:{self.port('RABBITMQ_AMQP_PORT')}/{VHOST}"

    @property
    def amqp_url(self) -> str:
        """The broker as admin: what the test looks with."""
        return self.user_url("admin")

    @property
    def smtp(self) -> Mailbox:
        return Mailbox(self.mailpit_url)

    # --- running compose -------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """This project's compose environment, as a person's shell would have it: without the
        development mode the test session sets for its own processes (tests/conftest.py)."""
        person = {k: v for k, v in os.environ.items() if k not in DEV_ENV}
        return {
            **person,
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_ENV_FILES": str(self.workdir / "compose.env"),
        }

    async def run(self, *args: str, timeout: float = 600) -> str:
        """A command in the repository root with this project's environment; its output."""
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            env=self.environment(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"{shlex.join(args)} did not finish in {timeout}s") from None
        text = out.decode(errors="replace")
        if process.returncode != 0:
            raise AssertionError(f"{shlex.join(args)} failed ({process.returncode}):\n{text}")
        return text

    async def compose(self, *args: str, timeout: float = 600) -> str:
        return await self.run("docker", "compose", "-f", COMPOSE_FILE, *args, timeout=timeout)

    def compose_sync(self, *args: str) -> str:
        return subprocess.run(
            ["docker", "compose", "-f", COMPOSE_FILE, *args],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    async def containers(self, service: str | None = None) -> list[Container]:
        found = parse_ps(await self.compose("ps", "-a", "--format", "json"))
        return [c for c in found if service in (None, c.service)]

    async def running(self, service: str) -> list[Container]:
        return [c for c in await self.containers(service) if c.running]

    async def queue_stats(self) -> dict[str, QueueStats]:
        ctl = [
            *("docker", "compose", "--project-name", self.project),
            *("--env-file", str(self.workdir / "compose.env")),
            *("-f", str(ROOT / COMPOSE_FILE), "exec", "-T", "rabbitmq", "rabbitmqctl"),
        ]
        return await queue_stats(VHOST, ctl)

    async def consumers(self, service: str) -> int:
        """How many consumers the broker counts on the service's work queue."""
        return (await self.queue_stats())[f"{service}.booking-events"].consumers

    # --- life cycle --------------------------------------------------------------------
    async def up(self) -> list[str]:
        """The README's `up --build --scale ...`, detached, waiting for every health check."""
        command = readme_command("up --build")
        await self.run(*command, "--detach", "--wait", "--wait-timeout", "600", timeout=1200)
        [postgres] = await self.running("postgres")
        address = await self.run(
            "docker",
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            postgres.id,
        )
        self.postgres_address = address.strip()
        # The invariants read every schema: as the superuser.
        self.env = DatabaseEnv(self.database_url("postgres", "POSTGRES_PASSWORD"))
        return command

    def database_url(self, role: str, password_key: str) -> str:
        """PostgreSQL as ``role``, at its container's address (it publishes no port)."""
        password = self.values[password_key]
        return f"postgresql://{role}:{password}@{self.postgres_address}:5432/booking"

    async def wait_healthy(self, expected: dict[str, int], timeout: float = 120) -> None:
        """Until each service named runs that many replicas, every one of them healthy."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            running = [c for c in await self.containers() if c.running]
            counts = {s: sum(c.service == s for c in running) for s in expected}
            if counts == expected and all(c.health == "healthy" for c in running):
                return
            if asyncio.get_running_loop().time() > deadline:
                states = [(c.name, c.state, c.health) for c in await self.containers()]
                raise AssertionError(f"not {expected} healthy after {timeout}s: {states}")
            await asyncio.sleep(1)

    async def down(self) -> None:
        await self.run(*readme_command("down"), "-v", "--remove-orphans", timeout=300)

    def save_logs(self) -> Path:
        path = self.workdir / "compose.log"
        path.write_text(self.compose_sync("logs", "--no-color", "--timestamps"))
        return path
