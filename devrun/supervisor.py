"""The local runner's process supervision (devrun/run.py): each service's processes started
with their own label and ops port, their output prefixed and coloured, all of them stopped
when one exits or the runner is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from itertools import cycle
from pathlib import Path

from shared import priority, registry

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 15.0
LINE_LIMIT = 64 * 1024
COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94", "91", "31")
MAIL = "mail"  # the mail catcher's name and label among the supervised (service, label) pairs
# Each consumer's default ops HTTP port (its settings say the same); replica n of a scaled
# service listens on base + 100·(n-1): email-1 8003, email-2 8103, email-3 8203.
HTTP_PORTS = {service.name: service.http_port for service in registry.CONSUMERS}
REPLICA_PORT_STEP = 100


# A developer's machine: the shared guest user and example secrets are fine (DEV_MODE); the
# schemas are the migration step's to change, so the services only check them.
LOCAL = {"DEV_MODE": "true", "MIGRATE_ON_START": "false"}


def replica_env(service: str, label: str) -> dict[str, str]:
    """What one process is told besides the runner's own environment: its label (which its
    log lines carry), its ops HTTP port, text logs for a terminal, and for a consumer the
    lowest CPU priority, so the booking API comes first (shared/priority.py). HTTP_PORT=0 in
    the environment keeps 0 (free ports, each logged at start) for every replica; a NICENESS
    there is every consumer's."""
    env = {"REPLICA_NAME": label, "LOG_FORMAT": os.environ.get("LOG_FORMAT") or "text"}
    if service in HTTP_PORTS:
        index = int(label.rsplit("-", 1)[1]) if label != service else 1
        base = HTTP_PORTS[service]
        free = os.environ.get("HTTP_PORT") == "0"
        env["HTTP_PORT"] = "0" if free else str(base + REPLICA_PORT_STEP * (index - 1))
    if service in registry.NAMES:
        env["NICENESS"] = os.environ.get("NICENESS") or str(priority.BACKGROUND)
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
        self,
        processes: list[tuple[str, str]],
        colour: bool,
        smtp_port: int | None = None,
        told: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.processes = processes
        # What each service is told on top (its database role's URLs: devrun/run.py).
        self.told = told or {}
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
        env |= {**LOCAL, **self.told.get(service, {})}
        command = [sys.executable, "-m", f"services.{service}"]
        if service == MAIL:
            command = [sys.executable, "-m", "devrun.mailcatcher"]
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
