"""The servers the local runner (devrun/run.py) needs: PostgreSQL and RabbitMQ reachable at
DATABASE_URL and AMQP_URL (installed from Debian's packages and started when they are not
and the runner is root on this machine), then the application's database created and the
migration step run, which gives every service a PostgreSQL role of its own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/booking"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class UsageError(Exception):
    """A bad command line, SCALE or URL: one line on stderr, exit status 2."""


def note(message: str) -> None:
    print(f"runner | {message}", file=sys.stderr, flush=True)


def mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':')[0]}:***@{hostport}"))


def pg_version() -> str | None:
    # Debian names clusters by major version; take the newest that has a "main" cluster.
    found = [p.parent.name for p in Path("/etc/postgresql").glob("*/main")]
    return max(found, key=lambda v: [int(x) for x in v.split(".") if x.isdigit()], default=None)


@dataclass(frozen=True)
class Server:
    name: str
    env_var: str
    default_url: str
    package: str

    @property
    def url(self) -> str:
        return os.environ.get(self.env_var) or self.default_url

    def address(self) -> tuple[str, int]:
        """Where the server listens (of a list of brokers in AMQP_URL, the first)."""
        from shared.messaging.addresses import first  # the project, installed in the venv

        try:
            parts = urlsplit(first(self.url))
        except ValueError as exc:  # an empty entry in a list of brokers
            raise UsageError(f"{self.env_var}: {exc}") from exc
        default = {"amqp": 5672, "amqps": 5671}.get(parts.scheme, 5432)
        try:
            return parts.hostname or "127.0.0.1", parts.port or default
        except ValueError as exc:  # .port validates lazily
            raise UsageError(f"{self.env_var} has a bad port ({mask(self.url)}): {exc}") from exc

    def installed(self) -> bool:
        if self.package == "postgresql":
            return shutil.which("pg_ctlcluster") is not None and pg_version() is not None
        return Path("/usr/sbin/rabbitmq-server").exists()

    def start_command(self) -> list[str]:
        if self.package == "rabbitmq-server":
            return ["rabbitmq-server", "-detached"]
        return ["pg_ctlcluster", "--skip-systemctl-redirect", str(pg_version()), "main", "start"]


SERVERS = (
    Server("PostgreSQL", "DATABASE_URL", DEFAULT_DATABASE_URL, "postgresql"),
    Server("RabbitMQ", "AMQP_URL", DEFAULT_AMQP_URL, "rabbitmq-server"),
)


def probe(host: str, port: int) -> str | None:
    """None when host:port accepts a TCP connection, else why not."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return "no answer within 2 s"
    except OSError as exc:
        return exc.strerror or str(exc)


def run_step(command: list[str]) -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}  # apt must never prompt
    code = subprocess.run(command, env=env, check=False).returncode
    return None if code == 0 else f"`{' '.join(command)}` exited with code {code}"


def install_and_start(server: Server) -> str | None:
    """Install the server if missing (Debian only) and start it; None, or why that failed."""
    if not server.installed():
        if not Path("/etc/debian_version").exists():
            return "it is not installed and automatic installation needs Debian"
        note(f"installing {server.package} with apt-get")
        failed = run_step(["apt-get", "update"])
        if failed := failed or run_step(["apt-get", "install", "-y", server.package]):
            return failed
    return run_step(server.start_command())


def wait_for_port(host: str, port: int, timeout: float = 60) -> str | None:
    deadline = time.monotonic() + timeout
    while (reason := probe(host, port)) and time.monotonic() < deadline:
        time.sleep(1)
    return reason and f"{reason} ({timeout:.0f} s after starting it)"


def ensure_server(server: Server, host: str, port: int) -> None:
    reason = probe(host, port)
    # Manage only a server on this machine, and only as root: apt and pg_ctlcluster need it.
    # A Debian package serves its standard port; another port means a server we don't manage.
    standard = port == (5672 if server.package == "rabbitmq-server" else 5432)
    if reason and standard and os.geteuid() == 0 and host in ("127.0.0.1", "localhost", "::1"):
        note(f"{server.name} is not reachable at {host}:{port} ({reason}); starting it")
        reason = install_and_start(server) or wait_for_port(host, port)
    if reason:
        where = f"{host}:{port} ({server.env_var}={mask(server.url)})"
        print(f"error: {server.name} is not reachable at {where}: {reason}", file=sys.stderr)
        raise SystemExit(1)


def ensure_database() -> None:
    if not (ROOT / "shared" / "db" / "create_database.py").exists():
        note("warning: shared.db.create_database is missing; not creating the database")
        return
    command = [sys.executable, "-m", "shared.db.create_database"]
    if code := subprocess.run(command, cwd=ROOT, check=False).returncode:
        note(f"shared.db.create_database exited with code {code}")  # it said why itself
        raise SystemExit(1)


def role_url(url: str, role: str, password: str) -> str:
    """``url`` (the superuser's) for ``role`` instead: same server and database."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{password}@{host}"))


def migration_step() -> dict[str, dict[str, str]]:
    """Run ``python -m shared.db.provision`` as the superuser of DATABASE_URL, with a fresh
    password for every role (a local run keeps no password anywhere); return what each
    service is told: its role's DATABASE_URL (and the booking service its ADMIN_DATABASE_URL).
    DB_ROLE_PREFIX, when set, goes before every role name, as it does for the step."""
    from shared.db.schemas import SCHEMAS  # the project, installed in the venv by `make run`

    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    prefix = os.environ.get("DB_ROLE_PREFIX", "")
    passwords = {schema.name: secrets.token_hex(16) for schema in SCHEMAS}
    step_env = {**os.environ, "DATABASE_URL": url}
    step_env |= {s.password_variable(): passwords[s.name] for s in SCHEMAS}
    command = [sys.executable, "-m", "shared.db.provision"]
    if code := subprocess.run(command, cwd=ROOT, env=step_env, check=False).returncode:
        note(f"the migration step exited with code {code}")  # it said why itself
        raise SystemExit(1)
    # A service's schema is named like it; the admin API writes its audit rows as "ops".
    urls = {s.name: role_url(url, s.role(prefix), passwords[s.name]) for s in SCHEMAS}
    told = {service: {"DATABASE_URL": urls[service]} for service in urls if service != "ops"}
    told["booking"]["ADMIN_DATABASE_URL"] = urls["ops"]
    return told
