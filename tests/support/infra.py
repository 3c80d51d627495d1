"""Per-test PostgreSQL databases and RabbitMQ vhosts, created and dropped by the tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg
import httpx

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("TEST_AMQP_PORT", "5672"))
AMQP_USER = os.environ.get("TEST_AMQP_USER", "guest")
AMQP_PASSWORD = os.environ.get("TEST_AMQP_PASSWORD", "guest")
RUN_ID = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class TestEnv:
    __test__ = False  # a fixture value, not a test class

    name: str
    database_url: str
    vhost: str

    def amqp_url(self, host: str = AMQP_HOST, port: int = AMQP_PORT, heartbeat: int = 5) -> str:
        vhost = quote(self.vhost, safe="")
        return f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{host}:{port}/{vhost}?heartbeat={heartbeat}"


async def _rabbitmqctl(*args: str) -> str:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    proc = await asyncio.create_subprocess_exec(
        ctl, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {out.decode()}")
    return out.decode()


# RabbitMQ's management API creates and deletes a vhost in milliseconds; each rabbitmqctl
# call starts an Erlang VM (about 0.6 s of CPU). `make services` enables the plugin when it
# can; without it the tests fall back to rabbitmqctl.
MANAGEMENT_URL = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
_management: list[bool] = []  # [available], probed once per run


async def _management_api(method: str, path: str, body: dict[str, str] | None = None) -> bool:
    """True when done through the management API; False when it is not there."""
    if _management == [False]:
        return False
    try:
        async with httpx.AsyncClient(auth=(AMQP_USER, AMQP_PASSWORD), timeout=10) as client:
            response = await client.request(method, f"{MANAGEMENT_URL}/api{path}", json=body)
    except httpx.TransportError:
        _management[:] = [False]
        return False
    response.raise_for_status()
    _management[:] = [True]
    return True


async def _add_vhost(name: str) -> None:
    vhost = quote(name, safe="")
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    if await _management_api("PUT", f"/vhosts/{vhost}"):
        await _management_api("PUT", f"/permissions/{vhost}/{quote(AMQP_USER)}", permissions)
        return
    await _rabbitmqctl("add_vhost", name)
    await _rabbitmqctl("set_permissions", "-p", name, AMQP_USER, ".*", ".*", ".*")


async def _delete_vhost(name: str) -> None:
    if not await _management_api("DELETE", f"/vhosts/{quote(name, safe='')}"):
        await _rabbitmqctl("delete_vhost", name)


async def create_env(label: str) -> TestEnv:
    name = f"bt_{RUN_ID}_{label[:20]}_{uuid.uuid4().hex[:6]}".lower()
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await _add_vhost(name)
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    return TestEnv(name=name, database_url=database_url, vhost=name)


async def drop_env(env: TestEnv) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{env.name}" WITH (FORCE)')
    finally:
        await admin.close()
    await _delete_vhost(env.vhost)


async def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl`` (e.g. to change permissions or delete a queue in a test's vhost);
    its output."""
    return await _rabbitmqctl(*args)


async def queue_settings(vhost: str) -> dict[str, tuple[str, str]]:
    """Each queue of ``vhost``: (its policy, its arguments as rabbitmqctl prints them)."""
    output = await _rabbitmqctl(
        "list_queues", "-p", vhost, "--quiet", "--no-table-headers", "name", "policy", "arguments"
    )
    rows = (line.split("\t") for line in output.splitlines() if line.count("\t") == 2)
    return {name: (policy, arguments) for name, policy, arguments in rows}
