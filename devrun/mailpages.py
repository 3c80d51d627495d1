"""The mail catcher's web page (devrun/mailcatcher.py): the caught mails, newest first, each
with its HTML and text views, attachments and raw .eml.

What a mail holds is someone else's data shown on a local page, so: every value is escaped;
a mail's HTML is served with a Content-Security-Policy sandbox (no script, no form, nothing
fetched from the network: what an email client shows, not what the sender hoped for); an
attachment is shown inline only for types a browser displays without running anything of
the mail's (PDF in its viewer, images, plain text), any other type is a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape
from pathlib import Path
from urllib.parse import quote

NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}")  # also what keeps URLs inside the dir
LISTED = 500  # newest mails on the page; older ones stay on disk
# Shown in the browser as they are; anything else is saved as a file.
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain"})
# A mail's HTML may style itself and show the images it embeds (data: URIs), nothing more.
MAIL_HTML_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1em 2em}"
    "table{border-collapse:collapse;width:100%;table-layout:fixed}"
    "td,th{padding:4px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd;"
    "overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    "th{background:#f4f4f4}col.when{width:13em}col.who{width:16%}col.files{width:14em}"
    "col.raw{width:7em}td.subject,td.files{white-space:normal;overflow-wrap:anywhere}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}"
    "dd{margin:0;overflow-wrap:anywhere}iframe{width:100%;height:70vh;border:1px solid #ddd}"
)
Reply = tuple[int, str, bytes, dict[str, str]]
log = logging.getLogger("mailcatcher")


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


def body_of(message: EmailMessage, kind: str) -> str | None:
    """The mail's ``kind`` ("plain" or "html") part as text, or None when it has none."""
    body = message.get_body(preferencelist=(kind,))
    if not isinstance(body, EmailMessage):
        return None
    try:
        return str(body.get_content())
    except (LookupError, ValueError):  # an unknown charset: show what can be shown
        payload = body.get_payload(decode=True)
        return payload.decode(errors="replace") if isinstance(payload, bytes) else str(payload)


def _row(name: str, message: EmailMessage) -> str:
    subject = header(message, "subject") or "(no subject)"
    when = datetime.strptime(name[:22], "%Y%m%dT%H%M%S.%f").strftime("%Y-%m-%d %H:%M:%S")
    files = _files(name, message)
    sender, to = header(message, "from", "x-envelope-from"), header(message, "to", "x-envelope-to")
    cells = [
        f"<td>{when}</td>",
        # Long addresses are cut with an ellipsis, whole in the tooltip: the subject stays.
        f'<td title="{escape(sender)}">{escape(sender)}</td>',
        f'<td title="{escape(to)}">{escape(to)}</td>',
        f'<td class="subject"><a href="/mail/{name}">{escape(subject)}</a></td>',
        f'<td class="files">{"<br>".join(files)}</td>',
        f'<td><a href="/mail/{name}/text">text</a> <a href="/mail/{name}.eml">.eml</a></td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _files(name: str, message: EmailMessage) -> list[str]:
    return [
        f'<a href="/mail/{name}/attachment/{i}">{escape(p.get_filename() or f"part {i}")}</a>'
        for i, p in enumerate(attachments(message))
    ]


def mail_page(name: str, message: EmailMessage) -> bytes:
    """One mail: its headers and attachments, its HTML (else text) in a sandboxed frame."""
    view = "html" if body_of(message, "html") is not None else "text"
    fields = [
        ("From", header(message, "from", "x-envelope-from")),
        ("To", header(message, "to", "x-envelope-to")),
        ("Envelope to", header(message, "x-envelope-to")),
        ("Date", header(message, "date")),
        ("Subject", header(message, "subject") or "(no subject)"),
    ]
    rows = "".join(f"<dt>{label}<dd>{escape(value)}" for label, value in fields)
    files = ", ".join(_files(name, message)) or "none"
    return (
        f"<!doctype html><meta charset=utf-8><title>{escape(fields[-1][1])}</title>"
        f'<style>{STYLE}</style><p><a href="/">All mail</a></p><dl>{rows}'
        f"<dt>Attachments<dd>{files}<dt>Views<dd>"
        f'<a href="/mail/{name}/html">HTML</a> <a href="/mail/{name}/text">text</a> '
        f'<a href="/mail/{name}.eml">.eml</a></dl>'
        f'<iframe sandbox src="/mail/{name}/{view}" title="the mail"></iframe>'
    ).encode()


def page(directory: Path) -> bytes:
    paths = [p for p in directory.glob("*.eml") if NAME.fullmatch(p.stem)]
    rows = [_row(p.stem, parse(p.read_bytes())) for p in sorted(paths, reverse=True)[:LISTED]]
    return (
        f"<!doctype html><meta charset=utf-8><title>Caught mail</title><style>{STYLE}</style>"
        f"<h1>Caught mail</h1><p>{len(rows)} shown, newest first, from {escape(str(directory))}"
        '<table><colgroup><col class="when"><col class="who"><col class="who"><col>'
        '<col class="files"><col class="raw"></colgroup>'
        "<tr><th>Received (UTC)<th>From<th>To<th>Subject<th>Attachments<th>Raw</tr>"
        + "".join(rows)
        + "</table>"
    ).encode()


def route(directory: Path, target: str) -> Reply:
    html, text = "text/html; charset=utf-8", "text/plain; charset=utf-8"
    if target == "/":
        return 200, html, page(directory), {}
    match = re.fullmatch(r"/mail/([^/]+?)(|\.eml|/text|/html|/attachment/(\d+))", target)
    path = directory / f"{match[1]}.eml" if match else directory
    if not (match and NAME.fullmatch(match[1]) and path.is_file()):
        return 404, text, b"no such mail\n", {}
    raw = path.read_bytes()
    if match[2] == ".eml":
        disposition = f'attachment; filename="{match[1]}.eml"'
        return 200, "message/rfc822", raw, {"Content-Disposition": disposition}
    message = parse(raw)
    if match[2] == "":
        return 200, html, mail_page(match[1], message), {}
    if match[2] == "/text":
        shown = body_of(message, "plain") or body_of(message, "html")
        return 200, text, (shown or "(this mail has no text part)").encode(), {}
    if match[2] == "/html":
        markup = body_of(message, "html")
        if markup is None:
            return 404, text, b"this mail has no HTML part\n", {}
        return 200, html, markup.encode(), {"Content-Security-Policy": MAIL_HTML_POLICY}
    return _attachment(message, int(match[3]))


def _attachment(message: EmailMessage, index: int) -> Reply:
    found = attachments(message)
    if index >= len(found):
        return 404, "text/plain; charset=utf-8", b"no such attachment\n", {}
    part = found[index]
    payload = part.get_payload(decode=True)
    body = payload if isinstance(payload, bytes) else str(payload).encode()
    filename = quote(part.get_filename() or f"part-{index}", safe="")
    kind = part.get_content_type()
    # Opened in the browser (a PDF in its viewer) when safe to; else saved as a file.
    inline = kind in INLINE_TYPES
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{filename}"
    shown = kind + ("; charset=utf-8" if kind == "text/plain" else "")
    extra = {"Content-Disposition": disposition}
    if kind != "application/pdf":  # a PDF viewer does not run in a sandboxed document
        extra["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src data:"
    return 200, shown if inline else "application/octet-stream", body, extra


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
