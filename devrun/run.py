"""Run every service locally as child processes with prefixed output (used by `make run`).

Usage: python -m devrun.run [--scale email=3 --scale voucher=2]  (or SCALE="email=3 voucher=2").
Checks PostgreSQL and RabbitMQ first (installing or starting them when root on Debian), then
runs the migration step (shared/db/provision.py) as the superuser of DATABASE_URL, which
creates one PostgreSQL role per schema; each service then connects as its own role, with
DEV_MODE=true (the shared guest user, example secrets). Unless SMTP_HOST is set, also runs
devrun/mailcatcher.py (labelled "mail") and points every service at it with
SMTP_HOST/SMTP_PORT, so mail sent locally is kept, never delivered.
Each consumer replica gets an ops HTTP port of its own (see replica_env in
devrun/supervisor.py); logs are readable text unless LOG_FORMAT says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import NoReturn

from devrun.local_services import (
    SERVERS,
    UsageError,
    ensure_database,
    ensure_server,
    migration_step,
    note,
)
from devrun.supervisor import MAIL, Supervisor
from shared import registry

SERVICES = ("booking", *registry.NAMES)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)  # one line instead of argparse's usage dump


def parse_scale(items: list[str]) -> dict[str, int]:
    scale = dict.fromkeys(SERVICES, 1)
    for item in items:
        name, sep, count = item.partition("=")
        if name not in SERVICES:
            raise UsageError(f"unknown service {name!r} in {item!r}; known: {', '.join(SERVICES)}")
        if not (sep and count.isascii() and count.isdigit()):
            raise UsageError(f"bad replica count in {item!r}: expected {name}=N with N >= 0")
        if name == "booking" and int(count) != 1:
            raise UsageError("booking always runs exactly 1 replica")
        scale[name] = int(count)
    return scale


def read_scale(argv: list[str]) -> dict[str, int]:
    parser = _Parser(description="Run the hotel booking services locally.")
    help_ = f"replicas of one of {', '.join(SERVICES)} (default 1 each); also SCALE in env"
    parser.add_argument("--scale", action="append", default=[], metavar="SERVICE=N", help=help_)
    flags: list[str] = parser.parse_args(argv).scale
    # SCALE first so that the command line, applied last, wins.
    return parse_scale(os.environ.get("SCALE", "").replace(",", " ").split() + flags)


def mail_ports() -> tuple[int, int]:
    """The SMTP and web ports devrun/mailcatcher.py will listen on (it reads the same vars)."""
    ports = []
    for var, default in (("MAILCATCHER_SMTP_PORT", "1025"), ("MAILCATCHER_HTTP_PORT", "8025")):
        value = os.environ.get(var) or default
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            raise UsageError(f"{var} must be a port number, not {value!r}")
        ports.append(int(value))
    return ports[0], ports[1]


def plan(scale: dict[str, int]) -> list[tuple[str, str]]:
    """(service, label) per process; the replica index shows only when there are several."""
    return [(s, s if n == 1 else f"{s}-{i}") for s, n in scale.items() for i in range(1, n + 1)]


def main(argv: list[str]) -> int:
    # --ensure-services: only make PostgreSQL and RabbitMQ reachable (used by `make test`).
    services_only = "--ensure-services" in argv
    argv = [arg for arg in argv if arg != "--ensure-services"]
    try:
        processes = plan(read_scale(argv))
        addresses = [server.address() for server in SERVERS]
        # An SMTP_HOST of one's own means real (or other) mail delivery: leave it alone.
        catcher = None if services_only or os.environ.get("SMTP_HOST") else mail_ports()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for server, (host, port) in zip(SERVERS, addresses, strict=True):
        ensure_server(server, host, port)
    if services_only:
        return 0
    ensure_database()
    told = migration_step()
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if catcher is None:
        return asyncio.run(Supervisor(processes, colour, told=told).run())
    where = os.environ.get("MAILCATCHER_DIR") or "var/mail"
    note(f"mail is caught in {where}; read it at http://127.0.0.1:{catcher[1]}")
    supervisor = Supervisor([(MAIL, MAIL), *processes], colour, catcher[0], told=told)
    return asyncio.run(supervisor.run())


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C during the checks, before the supervisor took over
        sys.exit(130)
