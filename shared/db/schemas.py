"""The database's schemas and their owners: the one list from which the migration step
(shared/db/provision.py) creates one PostgreSQL role per schema, owner of that schema and
of nothing else, and applies each schema's migrations.

A service connects as its schema's role, so it can read and write its own tables and is
refused everyone else's ("permission denied for schema ..."), as the RabbitMQ users are
refused each other's queues (shared/messaging/definitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared import registry
from shared.db.migrate import CONSUMER_MIGRATIONS

# Found by path, not by import: shared/ does not import the services. The image installs
# shared/ and services/ side by side, so the same path holds there.
SERVICES = Path(__file__).resolve().parents[2] / "services"
# The dead-letter library's audit table (shared/deadletters/audit.py); by path too, so that
# the schema list does not load the library.
DEAD_LETTER_MIGRATIONS = Path(__file__).resolve().parents[1] / "deadletters" / "migrations"
# The outbox's table (shared/outbox/migrations/), found by path too: shared/outbox/ imports
# shared/db/, and this list must not import it back.
OUTBOX_MIGRATIONS = Path(__file__).resolve().parents[1] / "outbox" / "migrations"
# What every service's schema has before its own tables: processed_events (the consumer
# runtime's idempotency record; booking consumes the consumers' progress reports) and an outbox.
COMMON_MIGRATIONS = (CONSUMER_MIGRATIONS, OUTBOX_MIGRATIONS)


@dataclass(frozen=True)
class Schema:
    name: str
    migrations: tuple[Path, ...]
    # Who connects as this schema's role, for the README and the error messages.
    used_by: str

    def role(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def password_variable(self) -> str:
        """The env variable of its role's password in deploy/.env (POSTGRES_EMAIL_PASSWORD)."""
        return f"POSTGRES_{self.name.upper()}_PASSWORD"


def service_migrations(own: Path) -> list[Path]:
    """The migration folders of a service whose own SQL files are in ``own``, in order."""
    return [*COMMON_MIGRATIONS, own]


def _service(name: str) -> Schema:
    return Schema(name, tuple(service_migrations(SERVICES / name / "migrations")), name)


SCHEMAS = (
    _service("booking"),
    *(_service(name) for name in registry.NAMES),
    # The dead-letter operations' audit table: bookingctl and the booking service's admin
    # API (its ADMIN_DATABASE_URL), never the booking service's own role.
    Schema("ops", (DEAD_LETTER_MIGRATIONS,), "bookingctl and the admin API"),
)


def schema(name: str) -> Schema:
    for found in SCHEMAS:
        if found.name == name:
            return found
    raise ValueError(f"unknown schema {name!r}; known: {', '.join(s.name for s in SCHEMAS)}")
