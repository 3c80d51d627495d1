#!/usr/bin/python3
"""TEST FIXTURE, not for production: a stand-in for Mailpit (axllent/mailpit), a Go binary
from GitHub that cannot be fetched on our machines. It serves the part of Mailpit that
deploy/compose.yaml and tests/compose use, with Mailpit's names and JSON shapes:

* SMTP on MP_SMTP_BIND_ADDR (0.0.0.0:1025), every mail kept, nothing relayed;
* HTTP on MP_UI_BIND_ADDR (0.0.0.0:8025): ``GET /readyz`` and ``/livez``;
  ``GET /api/v1/messages?start=&limit=`` (newest first: total, count, start, messages with
  ID, MessageID, From, To, Subject, Created, Size, Attachments); ``GET /api/v1/message/{ID}``
  (the same plus Text, HTML and Attachments with PartID, FileName, ContentType, Size);
  ``GET /api/v1/message/{ID}/part/{PartID}`` (the part's bytes);
* ``mailpit readyz``: exit 0 when the HTTP server answers /readyz (the compose health check);
* mail kept in the SQLite file MP_DATABASE (in memory when unset).

Like Mailpit, MessageID is the Message-ID header without its angle brackets, and a PartID
is the MIME path of the part ("2" is the second part of the top-level multipart).
No web UI, search, tags, authentication or TLS.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def bind_address(variable: str, default_port: int) -> tuple[str, int]:
    host, _, port = os.environ.get(variable, f"0.0.0.0:{default_port}").rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Store:
    """Every message received, raw, in SQLite; one lock, since HTTP threads share it."""

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS mail (n INTEGER PRIMARY KEY, id TEXT UNIQUE,"
            " created TEXT, raw BLOB)"
        )
        self._db.commit()

    def add(self, raw: bytes) -> str:
        message_id = uuid.uuid4().hex[:22]
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._lock:
            self._db.execute(
                "INSERT INTO mail (id, created, raw) VALUES (?, ?, ?)",
                (message_id, created, raw),
            )
            self._db.commit()
        return message_id

    def page(self, start: int, limit: int) -> tuple[int, list[tuple[str, str, bytes]]]:
        with self._lock:
            total = int(self._db.execute("SELECT count(*) FROM mail").fetchone()[0])
            rows = self._db.execute(
                "SELECT id, created, raw FROM mail ORDER BY n DESC LIMIT ? OFFSET ?",
                (limit, start),
            ).fetchall()
        return total, [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def get(self, message_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created, raw FROM mail WHERE id = ?", (message_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def addresses(message: EmailMessage, name: str) -> list[dict[str, str]]:
    header = message.get(name)
    found: tuple[Address, ...] = getattr(header, "addresses", ())
    return [{"Name": a.display_name, "Address": a.addr_spec} for a in found]


def parts(message: EmailMessage, path: str = "") -> list[tuple[str, EmailMessage]]:
    """Every leaf part with its MIME path ("1", "2", "1.2")."""
    if not message.is_multipart():
        return [(path or "1", message)]
    found = []
    for i, part in enumerate(message.iter_parts(), start=1):
        assert isinstance(part, EmailMessage)
        found += parts(part, f"{path}.{i}" if path else str(i))
    return found


def attachments(message: EmailMessage) -> list[dict[str, Any]]:
    return [
        {
            "PartID": part_id,
            "FileName": part.get_filename() or "",
            "ContentType": part.get_content_type(),
            "ContentID": "",
            "Size": len(part.get_payload(decode=True) or b""),
        }
        for part_id, part in parts(message)
        if part.is_attachment() or part.get_filename()
    ]


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    return str(part.get_content()) if isinstance(part, EmailMessage) else ""


def summary(message_id: str, created: str, raw: bytes) -> dict[str, Any]:
    message = parse(raw)
    senders = addresses(message, "from")
    return {
        "ID": message_id,
        "MessageID": str(message.get("message-id", "")).strip().strip("<>"),
        "Read": False,
        "From": senders[0] if senders else None,
        "To": addresses(message, "to"),
        "Cc": addresses(message, "cc"),
        "Bcc": [],
        "ReplyTo": addresses(message, "reply-to"),
        "Subject": str(message.get("subject", "")),
        "Created": created,
        "Tags": [],
        "Size": len(raw),
        "Attachments": len(attachments(message)),
        "Snippet": " ".join(body(message, "plain").split())[:250],
    }


def detail(message_id: str, created: str, raw: bytes) -> dict[str, Any]:
    message = parse(raw)
    found = summary(message_id, created, raw)
    for key in ("Read", "Created", "Snippet"):
        del found[key]
    found.update(
        Date=created,
        Text=body(message, "plain"),
        HTML=body(message, "html"),
        Inline=[],
        Attachments=attachments(message),
    )
    return found


class Api(BaseHTTPRequestHandler):
    store: Store

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would bury the SMTP log

    def send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def send_json(self, value: object, status: int = 200) -> None:
        self.send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        steps = url.path.strip("/").split("/")
        if url.path in ("/readyz", "/livez"):
            self.send(200, b"ok", "text/plain")
        elif steps == ["api", "v1", "messages"]:
            query = parse_qs(url.query)
            start = int(query.get("start", ["0"])[0])
            limit = int(query.get("limit", ["50"])[0])
            total, rows = self.store.page(start, limit)
            messages = [summary(*row) for row in rows]
            self.send_json(
                {
                    "total": total,
                    "unread": total,
                    "count": len(messages),
                    "messages_count": total,
                    "start": start,
                    "tags": [],
                    "messages": messages,
                }
            )
        elif steps[:3] == ["api", "v1", "message"] and len(steps) >= 4:
            self.message(steps[3], steps[4:])
        else:
            self.send(404, b"not found", "text/plain")

    def message(self, message_id: str, rest: list[str]) -> None:
        found = self.store.get(message_id)
        if found is None:
            self.send(404, b"message not found", "text/plain")
            return
        created, raw = found
        if not rest:
            self.send_json(detail(message_id, created, raw))
        elif len(rest) == 2 and rest[0] == "part":
            chosen = dict(parts(parse(raw))).get(rest[1])
            if chosen is None:
                self.send(404, b"part not found", "text/plain")
                return
            payload = chosen.get_payload(decode=True)
            self.send(
                200, payload if isinstance(payload, bytes) else b"", chosen.get_content_type()
            )
        else:
            self.send(404, b"not found", "text/plain")


class Catcher:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message_id = await asyncio.to_thread(self.store.add, raw)
        print(f"caught {message_id} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 2.0.0 Ok: queued as " + message_id


def readyz() -> int:
    host, port = bind_address("MP_UI_BIND_ADDR", 8025)
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=3) as answer:
            return 0 if answer.status == 200 else 1
    except OSError:
        return 1


def serve() -> int:
    store = Store(os.environ.get("MP_DATABASE") or ":memory:")
    Api.store = store
    smtp_host, smtp_port = bind_address("MP_SMTP_BIND_ADDR", 1025)
    controller = Controller(Catcher(store), hostname=smtp_host, port=smtp_port)
    controller.start()
    # PID 1 in a container ignores SIGTERM unless it handles it: docker stop would wait.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http = ThreadingHTTPServer(bind_address("MP_UI_BIND_ADDR", 8025), Api)
    print(f"mailpit stand-in: SMTP on {smtp_host}:{smtp_port}, HTTP on {http.server_address}")
    sys.stdout.flush()
    try:
        http.serve_forever()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(readyz() if sys.argv[1:] == ["readyz"] else serve())
