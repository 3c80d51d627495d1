"""One PostgreSQL role per schema, for real: the migration step (shared/db/provision.py) run
as the superuser creates them in the test's database (names of this run, dropped after),
each role reads and writes its own schema and is refused everyone else's, and the whole
booking flow runs with every service connected as its own role."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.email.bootstrap import bootstrap as email_bootstrap
from services.email.settings import EmailSettings
from shared.db.migrate import migrate
from shared.db.provision import ProvisionSettings, provision
from shared.db.roles import scram_verifier
from shared.db.schemas import COMMON_MIGRATIONS, SCHEMAS, schema
from shared.errors import ConfigurationError
from tests.support.infra import PG_ADMIN_URL, TestEnv
from tests.support.roles import drop_roles, role_prefix
from tests.support.smtp import smtp_server
from tests.support.stack import booking_api, booking_body, running_consumer, wait_until

ADMIN_TOKEN = secrets.token_urlsafe(32)


def role_url(env: TestEnv, role: str, password: str) -> str:
    parts = urlsplit(env.database_url)
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def provision_settings(env: TestEnv, prefix: str, passwords: dict[str, str]) -> ProvisionSettings:
    values: dict[str, Any] = {s.password_variable().lower(): passwords[s.name] for s in SCHEMAS}
    return ProvisionSettings(
        database_url=env.database_url, db_role_prefix=prefix, dev_mode=False, **values
    )


@pytest.fixture
async def roles(env: TestEnv) -> AsyncIterator[dict[str, str]]:
    """The database URL of each schema's role, after the migration step."""
    prefix = role_prefix()
    passwords = {s.name: secrets.token_hex(16) for s in SCHEMAS}
    try:
        await provision(provision_settings(env, prefix, passwords))
        yield {s.name: role_url(env, s.role(prefix), passwords[s.name]) for s in SCHEMAS}
    finally:
        await drop_roles(env.database_url, prefix)


async def test_each_role_uses_its_own_schema_and_is_refused_every_other(
    roles: dict[str, str],
) -> None:
    for name, url in roles.items():
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {name}.schema_migrations (name) VALUES ('written by its role')"
                )
                assert await conn.fetchval(f"SELECT count(*) FROM {name}.schema_migrations") > 1
                await conn.execute(f"DELETE FROM {name}.schema_migrations WHERE name LIKE 'wr%'")
            for other in (s.name for s in SCHEMAS if s.name != name):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.fetch(f"SELECT * FROM {other}.schema_migrations")
            for statement in ("CREATE TABLE public.scratch (x int)", "CREATE SCHEMA scratch"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            assert not await conn.fetchval(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            )
        finally:
            await conn.close()


async def test_the_whole_flow_runs_with_every_service_on_its_own_role(
    env: TestEnv, roles: dict[str, str]
) -> None:
    own: dict[str, Any] = {"migrate_on_start": False}  # as in production: they only check
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, database_url=roles["email"], smtp_port=smtp.port, **own),
        running_consumer("voucher", env, database_url=roles["voucher"], **own),
        running_consumer("notification", env, database_url=roles["notification"], **own),
        booking_api(
            env,
            database_url=roles["booking"],
            admin_token=ADMIN_TOKEN,
            admin_database_url=roles["ops"],
            **own,
        ) as (client, _),
    ):
        created = await client.post("/bookings", json=booking_body())
        assert created.status_code == 201
        booking_id = created.json()["id"]

        async def fulfilled() -> bool:
            steps = (await client.get(f"/bookings/{booking_id}")).json()["fulfilment"]
            return all(step["status"] == "done" for step in steps.values())

        await wait_until(fulfilled, what="every step done", timeout=30)
        # The admin API's audit rows, as the ops role.
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        dry = await client.post("/admin/dlq/email/replay", json={"all": True, "dry_run": True},
                                headers=auth)  # fmt: skip
        history = await client.get("/admin/dlq/history", headers=auth)
    assert dry.status_code == 200, dry.text
    assert [entry["operation"] for entry in history.json()] == ["replay"]
    assert len(smtp.messages) == 1


async def test_a_service_refuses_to_start_on_a_schema_that_is_not_migrated(env: TestEnv) -> None:
    settings = EmailSettings(
        database_url=env.database_url, amqp_url=env.amqp_url(), http_port=0, migrate_on_start=False
    )
    with pytest.raises(ConfigurationError, match="the email schema is not migrated"):
        await email_bootstrap(settings)
    # Half migrated (an older release): still refused, and it says which comes next.
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=1)
    try:
        await migrate(pool, "email", list(COMMON_MIGRATIONS))
    finally:
        await pool.close()
    with pytest.raises(ConfigurationError, match=r"\(3 of 7 migrations applied; next: email/"):
        await email_bootstrap(settings)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:  # refused at start, it left no connection open
        count = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
        assert await admin.fetchval(count, env.name) == 0
    finally:
        await admin.close()


async def test_a_role_that_connects_to_another_schema_is_told_so(
    env: TestEnv, roles: dict[str, str]
) -> None:
    settings = EmailSettings(
        database_url=roles["voucher"], amqp_url=env.amqp_url(), http_port=0, migrate_on_start=False
    )
    with pytest.raises(ConfigurationError, match="may not use the email schema"):
        await email_bootstrap(settings)


async def test_the_migration_step_takes_over_a_database_migrated_before_roles_existed(
    env: TestEnv,
) -> None:
    # An older release migrated every schema as the superuser, tables and sequences its own.
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=1)
    try:
        for found in SCHEMAS:
            await migrate(pool, found.name, list(found.migrations))
    finally:
        await pool.close()
    prefix = role_prefix()
    passwords = {s.name: secrets.token_hex(16) for s in SCHEMAS}
    try:
        lines = await provision(provision_settings(env, prefix, passwords))
        again = await provision(provision_settings(env, prefix, passwords))
        ops = role_url(env, schema("ops").role(prefix), passwords["ops"])
        conn = await asyncpg.connect(ops)
        try:  # a table with a bigserial: its sequence came along
            await conn.execute(
                "INSERT INTO ops.dlq_audit (actor, operation, queue, filters, dry_run, status) "
                "VALUES ('test', 'purge', 'email.dlq', '{}', true, 'running')"
            )
        finally:
            await conn.close()
    finally:
        await drop_roles(env.database_url, prefix)
    assert f"role {prefix}booking created" in lines
    assert f"schema booking: 0 migrations applied, owner {prefix}booking" in lines
    assert f"role {prefix}booking updated" in again


async def test_role_passwords_reach_postgresql_as_its_own_scram_verifier(env: TestEnv) -> None:
    # PostgreSQL computes a verifier from a password given in clear; ours, with its salt
    # and iteration count, must be the same, or no service could log in.
    role = f"bt_{uuid.uuid4().hex[:8]}_scram"
    admin = await asyncpg.connect(env.database_url)
    try:
        await admin.execute("SET password_encryption = 'scram-sha-256'")
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'correct horse battery'")
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname=$1", role)
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
    iterations, salt = stored.split("$")[1].split(":")
    ours = scram_verifier("correct horse battery", base64.b64decode(salt), int(iterations))
    assert ours == stored
