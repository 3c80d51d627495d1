"""Fulfilment end to end: voucher, email and notification report their progress to the
booking service, which shows it on the booking (real RabbitMQ, PostgreSQL and SMTP)."""

from __future__ import annotations

import io
from typing import Any

import httpx
from pypdf import PdfReader

from shared import registry
from shared.messaging.topology import consumer_topology
from tests.support.amqp import take
from tests.support.infra import TestEnv
from tests.support.smtp import smtp_server
from tests.support.stack import (
    all_consumers,
    booking_api,
    booking_body,
    fetchval,
    wait_until,
    with_token,
)

STEPS = registry.NAMES


async def _steps(client: httpx.AsyncClient, booking_id: str) -> dict[str, Any]:
    fulfilment: dict[str, Any] = (await client.get(f"/bookings/{booking_id}")).json()["fulfilment"]
    return fulfilment


async def _all_done(client: httpx.AsyncClient, booking_id: str, event_type: str) -> bool:
    steps = await _steps(client, booking_id)
    return all(
        steps[s]["status"] == "done" and steps[s]["source_event_type"] == event_type for s in STEPS
    )


async def test_fulfilment_moves_from_pending_to_done_and_the_voucher_can_be_downloaded(
    env: TestEnv,
) -> None:
    async with smtp_server() as smtp, all_consumers(env, smtp), booking_api(env) as (client, _):
        created = (await client.post("/bookings", json=booking_body())).json()
        assert {created["fulfilment"][s]["status"] for s in STEPS} == {"pending"}
        booking_id = created["id"]
        await wait_until(lambda: _all_done(client, booking_id, "BookingConfirmed"), what="done")
        steps = await _steps(client, booking_id)
        voucher = await client.get(f"/bookings/{booking_id}/voucher", headers=with_token(created))
    assert all(steps[s]["attempts"] == 1 for s in STEPS)
    assert all(steps[s]["updated_at"] for s in STEPS)
    # The voucher's done report is its VoucherIssued, stamped with the attempts: no
    # FulfilmentProgressed travels beside it.
    sent = await fetchval(
        env,
        "SELECT string_agg(event_type || ':' || coalesce(body::jsonb->>'attempts', '-'), ',') "
        "FROM voucher.outbox",
    )
    assert sent == "VoucherIssued:1"
    assert voucher.status_code == 200
    assert voucher.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(voucher.content)).pages)
    assert booking_id in text
    # What the hotel's rows hold (migration 009), through the event's stay_details.
    assert "Room type: Standard double (standard)" in text
    assert "Rua das Flores 12, 1200-195 Lisboa, Portugal" in text
    assert "from 15:00" in text
    assert "Cancellation: Free cancellation until 48 hours before check-in" in text
    assert voucher.headers["content-disposition"].startswith("attachment;")
    [mail] = smtp.messages
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    # The email renders the voucher itself (it must not depend on the voucher service), and
    # both carry the same voucher code.
    code = voucher.headers["content-disposition"].split("voucher-")[1].removesuffix('.pdf"')
    assert code in text
    assert code in (attachment.get_filename() or "")


async def test_an_smtp_server_answering_451_makes_email_retry_then_fail_while_others_finish(
    env: TestEnv,
) -> None:
    seen: set[str] = set()
    async with smtp_server() as smtp:
        smtp.answer = "451 4.3.0 try again later"
        async with (
            all_consumers(env, smtp, max_attempts=3, retry_base_delay=0.4),
            booking_api(env) as (client, _),
        ):
            booking_id = (await client.post("/bookings", json=booking_body())).json()["id"]

            async def email_failed() -> bool:
                steps = await _steps(client, booking_id)
                seen.add(steps["email"]["status"])
                return bool(steps["email"]["status"] == "failed")

            await wait_until(email_failed, what="email failed")
            steps = await _steps(client, booking_id)
    assert "retrying" in seen
    assert steps["email"]["attempts"] == 3
    # The API shows a code; the SMTP server's answer stays in the logs and the DLQ headers.
    assert steps["email"]["last_error"] == "smtp-temporary-failure"
    assert steps["voucher"]["status"] == "done"
    assert steps["notification"]["status"] == "done"
    [dead] = await take(env.amqp_url(), consumer_topology("email").dead_letter_queue, 1)
    assert dead.headers["x-reason"] == "retries-exhausted"
    assert "451" in str(dead.headers["x-exception-message"])
    assert smtp.refused == 3


async def test_a_cancelled_booking_voids_its_voucher_and_sends_a_cancellation_email(
    env: TestEnv,
) -> None:
    async with smtp_server() as smtp, all_consumers(env, smtp), booking_api(env) as (client, _):
        created = (await client.post("/bookings", json=booking_body())).json()
        booking_id, token = created["id"], with_token(created)
        await wait_until(lambda: _all_done(client, booking_id, "BookingConfirmed"), what="done")
        cancelled = await client.post(f"/bookings/{booking_id}/cancel", headers=token)
        await wait_until(lambda: _all_done(client, booking_id, "BookingCancelled"), what="cancel")
        voucher = await client.get(f"/bookings/{booking_id}/voucher", headers=token)
    assert cancelled.json()["status"] == "cancelled"
    assert voucher.status_code == 410
    assert "voided" in voucher.json()["detail"]
    subjects = [m["subject"] for m in smtp.messages]
    assert len(subjects) == 2
    assert "cancel" in subjects[1].lower()
