"""A local SMTP server for development: keeps every mail it receives and shows it on a web page.

Run: python -m devrun.mailcatcher  (`make run` starts it unless SMTP_HOST is set).
Settings: MAILCATCHER_SMTP_HOST/MAILCATCHER_SMTP_PORT (127.0.0.1:1025), MAILCATCHER_HTTP_PORT
(8025, same host) and MAILCATCHER_DIR (var/mail under the repository root).

Each mail becomes <UTC time>-<8 hex>.eml: the bytes exactly as received, preceded by two added
headers, X-Envelope-From and X-Envelope-To, because the envelope (Bcc recipients, bounces) is not
otherwise in the message.  Nothing is ever relayed. The web page: devrun/mailpages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from devrun.mailpages import answer, header, parse

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("mailcatcher")


def new_name() -> str:
    # Microseconds make names sort by arrival; the random part keeps same-instant mails apart.
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}"


def save(directory: Path, envelope: Envelope) -> tuple[str, EmailMessage]:
    recipients = ", ".join(envelope.rcpt_tos)
    head = f"X-Envelope-From: {envelope.mail_from or ''}\r\nX-Envelope-To: {recipients}\r\n"
    raw = head.encode("utf-8", "surrogateescape") + (envelope.original_content or b"")
    name = new_name()
    # Rename into place, so the page never lists a half-written file.
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(raw)
    tmp.replace(directory / f"{name}.eml")
    return name, parse(raw)


class Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name, message = await asyncio.to_thread(save, self.directory, envelope)
        subject = header(message, "subject")
        to = ", ".join(envelope.rcpt_tos)
        log.info("caught %s from %s to %s: %r", name, envelope.mail_from, to, subject)
        return "250 OK caught, not delivered"


@dataclass
class MailCatcher:
    directory: Path
    smtp: asyncio.Server
    http: asyncio.Server
    smtp_port: int  # the ones actually bound, when asked for port 0
    http_port: int

    async def close(self) -> None:
        for server in (self.smtp, self.http):
            server.close()
        # Bounded: from 3.12 wait_closed also waits for clients idling in a session; they
        # must not hold up the exit (asyncio.run cancels what is left of them).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.gather(self.smtp.wait_closed(), self.http.wait_closed())


async def start(directory: Path, host: str, smtp_port: int, http_port: int) -> MailCatcher:
    """Listen on both ports (0 picks free ones, for tests) in the running loop."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    loop, handler = asyncio.get_running_loop(), Handler(directory)
    # An explicit hostname: the default asks DNS for this machine's FQDN, which can hang.
    smtp = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="mailcatcher", loop=loop),
        host,
        smtp_port,
    )
    try:
        http = await asyncio.start_server(lambda r, w: answer(directory, r, w), host, http_port)
    except BaseException:
        smtp.close()
        raise
    ports = [int(server.sockets[0].getsockname()[1]) for server in (smtp, http)]
    return MailCatcher(directory, smtp, http, *ports)


async def serve() -> int:
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    host = os.environ.get("MAILCATCHER_SMTP_HOST") or "127.0.0.1"
    smtp_port = int(os.environ.get("MAILCATCHER_SMTP_PORT") or 1025)
    http_port = int(os.environ.get("MAILCATCHER_HTTP_PORT") or 8025)
    directory = Path(os.environ.get("MAILCATCHER_DIR") or ROOT / "var" / "mail")
    catcher = await start(directory, host, smtp_port, http_port)
    where = (
        f"{host}:{catcher.smtp_port}; mail kept in {directory}; http://{host}:{catcher.http_port}"
    )
    log.info(f"SMTP on {where}")
    await stop.wait()
    await catcher.close()
    log.info("stopped cleanly")
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    try:
        return asyncio.run(serve())
    except (OSError, ValueError) as exc:  # a port in use or a bad setting: say it in one line
        print(f"error: mail catcher: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
