"""Run every service locally as child processes with prefixed output (used by `make run`).

Usage: python deploy/run.py [--scale email=3 --scale voucher=2]  (or SCALE="email=3 voucher=2").
Checks PostgreSQL and RabbitMQ first (installing or starting them when root on Debian).
Unless SMTP_HOST is set, also runs deploy/mailcatcher.py (labelled "mail") and points every
service at it with SMTP_HOST/SMTP_PORT, so mail sent locally is kept, never delivered.
Each consumer replica gets an ops HTTP port of its own (see replica_env); logs are readable
text unless LOG_FORMAT says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("booking", "notification", "email", "voucher")
GRACE_SECONDS = 15.0
LINE_LIMIT = 64 * 1024
COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94", "91", "31")
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/booking"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MAIL = "mail"  # the mail catcher's name and label among plan()'s (service, label) pairs
# Each consumer's default ops HTTP port (its settings say the same); replica n of a scaled
# service listens on base + 100·(n-1): email-1 8003, email-2 8103, email-3 8203.
HTTP_PORTS = {"notification": 8002, "email": 8003, "voucher": 8004}
REPLICA_PORT_STEP = 100


class UsageError(Exception):
    """A bad command line, SCALE or URL: one line on stderr, exit status 2."""


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


def note(message: str) -> None:
    print(f"runner | {message}", file=sys.stderr, flush=True)


def mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':')[0]}:***@{hostport}"))


def mail_ports() -> tuple[int, int]:
    """The SMTP and web ports deploy/mailcatcher.py will listen on (it reads the same vars)."""
    ports = []
    for var, default in (("MAILCATCHER_SMTP_PORT", "1025"), ("MAILCATCHER_HTTP_PORT", "8025")):
        value = os.environ.get(var) or default
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            raise UsageError(f"{var} must be a port number, not {value!r}")
        ports.append(int(value))
    return ports[0], ports[1]


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
        parts = urlsplit(self.url)
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


def plan(scale: dict[str, int]) -> list[tuple[str, str]]:
    """(service, label) per process; the replica index shows only when there are several."""
    return [(s, s if n == 1 else f"{s}-{i}") for s, n in scale.items() for i in range(1, n + 1)]


def replica_env(service: str, label: str) -> dict[str, str]:
    """What one process is told besides the runner's own environment: its label (which its
    log lines carry), its ops HTTP port, text logs for a terminal. HTTP_PORT=0 in the
    environment keeps 0 (free ports, each logged at start) for every replica."""
    env = {"REPLICA_NAME": label, "LOG_FORMAT": os.environ.get("LOG_FORMAT") or "text"}
    if service in HTTP_PORTS:
        index = int(label.rsplit("-", 1)[1]) if label != service else 1
        base = HTTP_PORTS[service]
        free = os.environ.get("HTTP_PORT") == "0"
        env["HTTP_PORT"] = "0" if free else str(base + REPLICA_PORT_STEP * (index - 1))
    return env


def signal_group(process: asyncio.subprocess.Process, sig: int) -> None:
    # The whole process group, so anything a service forked goes down with it.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def emit(line: str) -> None:
    # A closed terminal or pipe must not stop the runner from shutting the children down.
    with contextlib.suppress(OSError):
        print(line, flush=True)


async def pump(stream: asyncio.StreamReader, prefix: str) -> None:
    # Split lines ourselves rather than readline(): it raises on an overlong line and loses it;
    # here such a line just comes out in LINE_LIMIT pieces, each prefixed.
    pending = b""
    while chunk := await stream.read(LINE_LIMIT):
        *lines, pending = (pending + chunk).split(b"\n")
        if len(pending) >= LINE_LIMIT:
            lines, pending = [*lines, pending], b""
        for line in lines:
            emit(prefix + line.decode(errors="replace").rstrip("\r"))
    if pending:
        emit(prefix + pending.decode(errors="replace"))


class Supervisor:
    def __init__(
        self, processes: list[tuple[str, str]], colour: bool, smtp_port: int | None = None
    ) -> None:
        self.processes = processes
        self.colour = colour
        self.smtp_port = smtp_port  # of the mail catcher among processes, if there is one
        self.mail_up: asyncio.Task[None] | None = None
        self.width = max([14, *(len(label) for _, label in processes)])
        self.stopping = asyncio.Event()
        self.failed = False

    def prefix(self, label: str, colour: str) -> str:
        text = f"{label:<{self.width}} | "
        return f"\033[{colour}m{text}\033[0m" if self.colour else text

    def log(self, message: str) -> None:
        emit(self.prefix("runner", "1") + message)

    def on_signal(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            self.log("stopping all")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP too: the children have their own sessions, so a closed terminal reaches
        # only the runner, and they must not be left behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.on_signal)
        jobs = [self.supervise(*names, c) for names, c in zip(self.processes, cycle(COLOURS))]
        results = await asyncio.gather(*jobs)
        return 0 if all(results) and not self.failed else 1

    async def spawn(self, service: str, label: str) -> asyncio.subprocess.Process:
        # The label doubles as REPLICA_NAME so the services' own log lines match the prefix;
        # unbuffered, so lines show up as they are written.
        env = {**os.environ, **replica_env(service, label), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", f"services.{service}"]
        if service == MAIL:
            command = [sys.executable, "deploy/mailcatcher.py"]
        elif self.smtp_port is not None:
            env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port)}
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT, env=env, stdout=pipe, stderr=pipe,
            # A session of its own: a terminal Ctrl-C reaches only the runner, which then
            # stops each child exactly once.
            start_new_session=True,
        )  # fmt: skip

    async def supervise(self, service: str, label: str, colour: str) -> bool:
        """Run one process until it exits or all stop; True when it exited with code 0."""
        if service != MAIL and self.smtp_port is not None:
            self.mail_up = self.mail_up or asyncio.create_task(self.wait_for_mail())
            await self.mail_up
            if self.stopping.is_set():  # e.g. the catcher could not listen: never started
                return True
        try:
            process = await self.spawn(service, label)
        except OSError as exc:  # stop the others rather than leave them running unwatched
            self.failed = True
            self.stopping.set()
            self.log(f"cannot start {label}: {exc}")
            return False
        streams = [s for s in (process.stdout, process.stderr) if s is not None]
        pumps = [asyncio.create_task(pump(s, self.prefix(label, colour))) for s in streams]
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self.stopping.wait())
        await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        unexpected = not self.stopping.is_set()
        if not exited.done():
            await self.terminate(label, process)
        # Let its last lines out first, without hanging on a pipe a grandchild still holds.
        await asyncio.wait(pumps, timeout=1)
        if unexpected:
            self.failed = True
            self.stopping.set()
            self.log(f"{label} exited with code {process.returncode}; stopping all")
        elif process.returncode != 0:
            self.log(f"{label} exited with code {process.returncode} while stopping")
        return process.returncode == 0

    async def wait_for_mail(self, timeout: float = 10) -> None:
        # Services start once the catcher listens, so that their first mail is not refused.
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.stopping.is_set():
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.smtp_port)
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    self.log(f"mail is not listening after {timeout:.0f} s; starting anyway")
                    return
                await asyncio.sleep(0.1)
            else:
                writer.close()
                return

    async def terminate(self, label: str, process: asyncio.subprocess.Process) -> None:
        signal_group(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), GRACE_SECONDS)
        except TimeoutError:
            self.log(f"{label} still running after {GRACE_SECONDS:.0f} s; killing it")
            signal_group(process, signal.SIGKILL)
            await process.wait()


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
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if catcher is None:
        return asyncio.run(Supervisor(processes, colour).run())
    where = os.environ.get("MAILCATCHER_DIR") or "var/mail"
    note(f"mail is caught in {where}; read it at http://127.0.0.1:{catcher[1]}")
    return asyncio.run(Supervisor([(MAIL, MAIL), *processes], colour, catcher[0]).run())


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C during the checks, before the supervisor took over
        sys.exit(130)
