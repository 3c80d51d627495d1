"""devrun/mailcatcher.py: the local SMTP server that keeps mail as .eml files and lists it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import sys
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from devrun.mailcatcher import MailCatcher, start

ROOT = Path(__file__).resolve().parents[2]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
SUBJECT = "Your <booking> & voucher"
SENDER, RECIPIENTS = "noreply@hotel.test", ["guest@example.com", "audit@hotel.test"]


def confirmation() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, RECIPIENTS[0], SUBJECT
    message.set_content("Dear guest, your room is booked.")
    message.add_alternative("<p>Dear guest, your room is <b>booked</b>.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="voucher.pdf")
    return message


def send(port: int, message: EmailMessage) -> None:
    # local_hostname: smtplib would otherwise ask DNS for this machine's name.
    with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost", timeout=5) as smtp:
        smtp.send_message(message, from_addr=SENDER, to_addrs=RECIPIENTS)


@pytest.fixture
async def catcher(tmp_path: Path) -> AsyncIterator[MailCatcher]:
    started = await start(tmp_path / "mail", "127.0.0.1", 0, 0)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def caught(catcher: MailCatcher) -> Path:
    """The .eml file of one confirmation sent over real SMTP."""
    await asyncio.to_thread(send, catcher.smtp_port, confirmation())
    [path] = catcher.directory.iterdir()  # one file: no temporary one left behind
    return path


async def test_a_mail_sent_over_smtp_is_kept_with_its_envelope_and_attachment(
    caught: Path,
) -> None:
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.eml", caught.name)
    raw = await asyncio.to_thread(caught.read_bytes)
    assert raw.startswith(b"X-Envelope-From: noreply@hotel.test\r\nX-Envelope-To: ")
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["X-Envelope-To"] == ", ".join(RECIPIENTS)
    assert message["Subject"] == SUBJECT
    [attachment] = message.iter_attachments()
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_filename() == "voucher.pdf"
    assert attachment.get_content() == PDF


async def test_the_page_lists_the_mail_escaped_and_serves_its_text_raw_file_and_attachment(
    catcher: MailCatcher, caught: Path
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catcher.http_port}") as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert "Your &lt;booking&gt; &amp; voucher" in page.text
        assert "<booking>" not in page.text
        assert ">voucher.pdf</a>" in page.text
        links = dict(re.findall(r'href="(/mail/[^"]+?(/text|\.eml|/attachment/0))"', page.text))
        assert set(links.values()) == {"/text", ".eml", "/attachment/0"}
        by_kind = {kind: link for link, kind in links.items()}

        text = await client.get(by_kind["/text"])
        assert text.text.strip() == "Dear guest, your room is booked."
        assert text.headers["content-type"].startswith("text/plain")
        raw = await asyncio.to_thread(caught.read_bytes)
        assert (await client.get(by_kind[".eml"])).content == raw
        attachment = await client.get(by_kind["/attachment/0"])
        assert attachment.content == PDF
        assert "voucher.pdf" in attachment.headers["content-disposition"]


async def test_only_caught_mails_can_be_fetched_from_the_page(
    catcher: MailCatcher, caught: Path
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catcher.http_port}") as client:
        for target in ("/mail/..%2F..%2Fetc%2Fpasswd.eml", "/nope", f"/mail/{caught.stem}/x"):
            assert (await client.get(target)).status_code == 404, target
        assert (await client.get(f"/mail/{caught.stem}/attachment/1")).status_code == 404


async def test_the_script_logs_a_line_per_mail_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    ports = {"MAILCATCHER_SMTP_PORT": "0", "MAILCATCHER_HTTP_PORT": "0"}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "devrun.mailcatcher"),
        cwd=ROOT,
        env={**os.environ, **ports, "MAILCATCHER_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(5):
            listening = (await process.stdout.readline()).decode()
            port = re.search(r"SMTP on 127\.0\.0\.1:(\d+);", listening)
            assert port, listening
            await asyncio.to_thread(send, int(port[1]), confirmation())
            logged = (await process.stdout.readline()).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            rest = (await process.stdout.read()).decode()
            assert await process.wait() == 0, rest
    assert re.fullmatch(rf"caught \S+ from {SENDER} to {', '.join(RECIPIENTS)}: .*\n", logged)
    assert SUBJECT in logged
    assert rest == "stopped cleanly\n"


async def test_the_html_view_is_sandboxed_and_the_pdf_opens_inline_other_files_download(
    catcher: MailCatcher,
) -> None:
    message = confirmation()
    message.add_attachment(
        b"MZ\x90\x00", maintype="application", subtype="x-msdownload", filename="setup.exe"
    )
    await asyncio.to_thread(send, catcher.smtp_port, message)
    [path] = catcher.directory.iterdir()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catcher.http_port}") as client:
        page = (await client.get("/")).text
        mail = (await client.get(f"/mail/{path.stem}")).text
        html = await client.get(f"/mail/{path.stem}/html")
        pdf = await client.get(f"/mail/{path.stem}/attachment/0")
        exe = await client.get(f"/mail/{path.stem}/attachment/1")
    assert f'href="/mail/{path.stem}">' in page  # the subject opens the mail's page
    assert "<dt>Subject<dd>Your &lt;booking&gt; &amp; voucher" in mail  # its headers
    assert f'<iframe sandbox src="/mail/{path.stem}/html"' in mail  # and its HTML, framed
    assert html.text.strip() == "<p>Dear guest, your room is <b>booked</b>.</p>"
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    policy_words = html.headers["content-security-policy"].split("; ")
    assert "sandbox" in policy_words
    assert "default-src 'none'" in policy_words
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline;")
    assert pdf.content == PDF
    assert exe.headers["content-type"] == "application/octet-stream"
    assert exe.headers["content-disposition"].startswith("attachment;")


async def test_a_long_address_is_cut_on_the_page_and_whole_in_its_tooltip(
    catcher: MailCatcher,
) -> None:
    message = confirmation()
    long_address = "a-very-long-mailbox-name-" * 8 + "@example.com"
    del message["To"]
    message["To"] = long_address
    await asyncio.to_thread(send, catcher.smtp_port, message)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catcher.http_port}") as client:
        page = (await client.get("/")).text
    assert f'<td title="{long_address}">' in page
    assert "table-layout:fixed" in page
    assert "text-overflow:ellipsis" in page
