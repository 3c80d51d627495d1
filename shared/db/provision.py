"""The migration step: ``python -m shared.db.provision``, run once before the services
(compose: the one-shot ``migrate`` service the others wait for; ``make run``: devrun/run.py),
as PostgreSQL's superuser (DATABASE_URL). The only process that uses the superuser.

For every schema of shared/db/schemas.py, with the role passwords set
(POSTGRES_<SCHEMA>_PASSWORD): its role is created (or made a plain login again, with this
password), the schema and everything in it handed to the role, and the pending migrations
applied as that role. Without any role password it only migrates, as the connecting user.
Safe to run again and from several places at once. Exit 0, or 1 with one line on stderr.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from pydantic import Field, SecretStr, field_validator

from shared.db.migrate import migrate_on
from shared.db.pool import acquire, close_pool
from shared.db.roles import ROLE_PREFIX, close_public_schema, ensure_role
from shared.db.schemas import SCHEMAS, Schema
from shared.errors import ConfigurationError, SharedError
from shared.secrets import url_user
from shared.settings import CommonSettings, load_settings
from shared.startup import connect_database


class ProvisionSettings(CommonSettings):
    """DATABASE_URL is the superuser's here; every other process has its own role's."""

    db_pool_size: int = Field(default=1, ge=1, le=2)
    # Put before every role name (hotel_booking, ...): PostgreSQL roles belong to the whole
    # server, so a server shared with other systems (or tests) needs names of its own.
    db_role_prefix: str = ""
    postgres_booking_password: SecretStr | None = None
    postgres_notification_password: SecretStr | None = None
    postgres_email_password: SecretStr | None = None
    postgres_voucher_password: SecretStr | None = None
    postgres_ops_password: SecretStr | None = None

    @field_validator("db_role_prefix")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not ROLE_PREFIX.match(value):
            raise ValueError("lowercase letters, digits and underscores only, at most 40")
        return value

    def password(self, schema: Schema) -> str | None:
        value: SecretStr | None = getattr(self, schema.password_variable().lower())
        return value.get_secret_value() if value is not None and value.get_secret_value() else None

    def passwords(self) -> dict[str, str] | None:
        """Each schema's role password; None when no role is configured at all."""
        found = {s.name: self.password(s) for s in SCHEMAS}
        given = {name: password for name, password in found.items() if password}
        if not given:
            return None
        if missing := [s.password_variable() for s in SCHEMAS if s.name not in given]:
            raise ConfigurationError(f"set {', '.join(missing)} too: every schema has its role")
        return given

    def secrets(self) -> dict[str, tuple[str | None, int]]:
        roles = {s.password_variable(): (self.password(s), 0) for s in SCHEMAS}
        return {**super().secrets(), **roles}


async def provision(settings: ProvisionSettings) -> list[str]:
    """Roles, ownership and migrations; one line per schema saying what was done."""
    passwords = settings.passwords()
    pool = await connect_database(settings, max_size=1)
    done = []
    try:
        async with acquire(pool, timeout=settings.db_acquire_timeout) as conn:
            if passwords is not None:
                await close_public_schema(conn)
            for schema in SCHEMAS:
                owner = None
                if passwords is not None:
                    owner = schema.role(settings.db_role_prefix)
                    created = await ensure_role(conn, owner, passwords[schema.name])
                    done.append(f"role {owner} {'created' if created else 'updated'}")
                directories = list(schema.migrations)
                applied = await migrate_on(conn, schema.name, directories, owner)
                who = owner or url_user(settings.database_url) or "the connecting user"
                done.append(f"schema {schema.name}: {len(applied)} migrations applied, owner {who}")
    finally:
        await close_pool(pool, settings.db_command_timeout)
    return done


def main() -> None:
    try:
        settings = load_settings(ProvisionSettings)
        for line in asyncio.run(provision(settings)):
            print(f"migrate: {line}", flush=True)
    except (SharedError, asyncpg.PostgresError) as exc:
        print(f"error: the migration step failed: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
