"""PostgreSQL roles of the services: one per schema (shared/db/schemas.py), a login with no
other power, created or brought up to date by the migration step as the superuser.

Passwords reach PostgreSQL as SCRAM-SHA-256 verifiers computed here, never as text: a
statement log (log_statement = ddl) or pg_stat_activity would otherwise show them, and
this is what psql's \\password does too (RFC 5802 / RFC 7677, PostgreSQL's format).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import asyncpg

from shared.db.pool import Connection

SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
# A role prefix is part of an identifier: letters, digits and underscores only.
ROLE_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,39}$|^$")
# Whatever else a role might have been given, it is a plain login again.
ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"


def scram_verifier(
    password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, as PostgreSQL keeps it.

    The password is used as UTF-8 without SASLprep, which leaves ASCII unchanged (PostgreSQL
    itself falls back to the raw bytes when SASLprep does not apply)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def ensure_role(conn: Connection | asyncpg.Connection, role: str, password: str) -> bool:
    """Create ``role`` or bring it back to a plain login with this password; True if it
    was created."""
    verifier = scram_verifier(password)
    for verb in ("CREATE", "ALTER"):
        if verb == "CREATE" and await _exists(conn, role):
            continue
        # format() quotes the name and the literal in PostgreSQL itself (utility statements
        # take no parameters).
        statement = await conn.fetchval(
            f"SELECT format('{verb} ROLE %I {ATTRIBUTES} PASSWORD %L', $1::text, $2::text)",
            role,
            verifier,
        )
        try:
            await conn.execute(statement)
        except asyncpg.DuplicateObjectError:  # another migration step created it meanwhile
            continue
        return verb == "CREATE"
    return False


async def _exists(conn: Connection | asyncpg.Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role))


async def close_public_schema(conn: Connection | asyncpg.Connection) -> None:
    """No role creates objects in the public schema (PostgreSQL 15 and later already
    refuse it; older versions grant it to every role)."""
    await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
