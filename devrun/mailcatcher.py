"""A local SMTP server for development: keeps every mail it receives and shows it on a web page.

Run: python -m devrun.mailcatcher  (`make run` starts it unless SMTP_HOST is set).
Settings: MAILCATCHER_SMTP_HOST/MAILCATCHER_SMTP_PORT (127.0.0.1:1025), MAILCATCHER_HTTP_PORT
(8025, same host) and MAILCATCHER_DIR (var/mail under the repository root).

Each mail becomes <UTC time>-<8 hex>.eml: the bytes exactly as received, preceded by two added
headers, X-Envelope-From and X-Envelope-To, because the envelope (Bcc recipients, bounces) is not
otherwise in the message.  Nothing is ever relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape
from pathlib import Path
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}")  # also what keeps URLs inside the dir
LISTED = 500  # newest mails on the page; older ones stay on disk
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


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # what policy.default always builds
    return message


def header(message: EmailMessage, *names: str) -> str:
    """The first of these headers present, unfolded; a malformed one is shown as it came."""
    for name in names:
        try:
            if (value := message.get(name)) is not None:
                return " ".join(str(value).split())
        except (ValueError, IndexError, TypeError):  # header parsers choke on odd input
            return " ".join(str(message.get_all(name, [""])[0]).split())
    return ""


def attachments(message: EmailMessage) -> list[EmailMessage]:
    found = (p for p in message.walk() if not p.is_multipart())
    return [
        p for p in found if isinstance(p, EmailMessage) and (p.is_attachment() or p.get_filename())
    ]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if not isinstance(body, EmailMessage):
        return "(this mail has no text part)"
    try:
        return str(body.get_content())
    except (LookupError, ValueError):  # an unknown charset: show what can be shown
        payload = body.get_payload(decode=True)
        return payload.decode(errors="replace") if isinstance(payload, bytes) else str(payload)


class Handler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name, message = await asyncio.to_thread(save, self.directory, envelope)
        subject = header(message, "subject")
        to = ", ".join(envelope.rcpt_tos)
        log.info("caught %s from %s to %s: %r", name, envelope.mail_from, to, subject)
        return "250 OK caught, not delivered"


def page(directory: Path) -> bytes:
    rows = []
    paths = [p for p in directory.glob("*.eml") if NAME.fullmatch(p.stem)]
    for path in sorted(paths, reverse=True)[:LISTED]:
        name, message = path.stem, parse(path.read_bytes())
        subject = escape(header(message, "subject") or "(no subject)")
        when = datetime.strptime(name[:22], "%Y%m%dT%H%M%S.%f").strftime("%Y-%m-%d %H:%M:%S")
        files = [
            f'<a href="/mail/{name}/attachment/{i}">{escape(p.get_filename() or f"part {i}")}</a>'
            for i, p in enumerate(attachments(message))
        ]
        cells = [
            when,
            escape(header(message, "from", "x-envelope-from")),
            escape(header(message, "to", "x-envelope-to")),
            f'<a href="/mail/{name}/text">{subject}</a>',
            "<br>".join(files),
            f'<a href="/mail/{name}.eml">.eml</a>',
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (
        "<!doctype html><meta charset=utf-8><title>Caught mail</title>"
        "<style>td,th{padding:2px 8px;text-align:left;vertical-align:top}</style>"
        f"<h1>Caught mail</h1><p>{len(rows)} shown, newest first, from {escape(str(directory))}"
        "<table><tr><th>Received (UTC)<th>From<th>To<th>Subject<th>Attachments<th>Raw</tr>"
        + "".join(rows)
        + "</table>"
    ).encode()


Reply = tuple[int, str, bytes, dict[str, str]]


def route(directory: Path, target: str) -> Reply:
    html, text = "text/html; charset=utf-8", "text/plain; charset=utf-8"
    if target == "/":
        return 200, html, page(directory), {}
    match = re.fullmatch(r"/mail/([^/]+)(\.eml|/text|/attachment/(\d+))", target)
    path = directory / f"{match[1]}.eml" if match else directory
    if not (match and NAME.fullmatch(match[1]) and path.is_file()):
        return 404, text, b"no such mail\n", {}
    raw = path.read_bytes()
    if match[2] == ".eml":
        disposition = f'attachment; filename="{match[1]}.eml"'
        return 200, "message/rfc822", raw, {"Content-Disposition": disposition}
    message = parse(raw)
    if match[2] == "/text":
        return 200, text, text_of(message).encode(), {}
    found = attachments(message)
    if (index := int(match[3])) >= len(found):
        return 404, text, b"no such attachment\n", {}
    part = found[index]
    payload = part.get_payload(decode=True)
    body = payload if isinstance(payload, bytes) else str(payload).encode()
    filename = quote(part.get_filename() or f"part-{index}", safe="")
    # Always a download as octet-stream: a mail's own content type could make it a page here.
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
    return 200, "application/octet-stream", body, headers


async def answer(
    directory: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One request per connection (Connection: close) is all a browser needs from this page."""
    method = ""
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method not in ("GET", "HEAD"):
            reply: Reply = 405, "text/plain", b"GET only\n", {"Allow": "GET, HEAD"}
        else:
            reply = await asyncio.to_thread(route, directory, target.split("?", 1)[0])
    except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        reply = 400, "text/plain", b"bad request\n", {}
    except Exception:  # one broken mail must not take the page down with it
        log.exception("cannot answer this request")
        reply = 500, "text/plain", b"internal error; see the mail catcher's log\n", {}
    status, content_type, body, extra = reply
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    headers |= {"Connection": "close", "X-Content-Type-Options": "nosniff", **extra}
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
    writer.write(b"" if method == "HEAD" else body)
    with contextlib.suppress(ConnectionError):  # the browser may already have gone
        await writer.drain()
        writer.close()
        await writer.wait_closed()


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
