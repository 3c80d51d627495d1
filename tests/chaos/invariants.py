"""Drain the system, then check the end-to-end invariants I1-I5 and count the figures.

I1  every committed booking has exactly one outbox event of each type it caused (booking:
    BookingConfirmed; each consumer: one "done" report per effect, the voucher's being its
    VoucherIssued; voucher: one VoucherIssued per voucher), and every outbox row is
    published in the end;
I2  for each consumer and each booking the effect happened exactly once, or the event sits
    in that consumer's dead-letter queue with a reason (the booking service, consumer of the
    fulfilment events, is held to the same rule);
I3  no effect exists for a booking that was never committed;
I4  after the drain every work and retry queue is empty, with nothing unacked;
I5  emails received by the SMTP server equal bookings; extra copies (a process died between
    sending and recording) are counted as duplicates and reported, never hidden.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import asyncpg

from shared.messaging.topology import CONSUMERS
from tests.chaos.drain import DeadLetter, dead_letters, drain
from tests.chaos.figures import Figures
from tests.chaos.infra import QueueStats, work_queues
from tests.chaos.observed import ObservedSystem
from tests.chaos.system import CONSUMER_SERVICES
from tests.support.load import LoadRecord
from tests.support.stack import EFFECT_TABLES


def _absorbed(system: ObservedSystem) -> int:
    return sum(
        line.count(" skipped")
        for service in system.services.values()
        if service.log.exists()
        for line in service.log.read_text(errors="replace").splitlines()
        if ": duplicate " in line
    )


async def check(
    system: ObservedSystem,
    record: LoadRecord,
    *,
    scenario: str,
    faults: int,
    started: float,
    poison: frozenset[str] = frozenset(),
    duplicates_allowed: bool = False,
    drain_timeout: float = 120.0,
) -> Figures:
    figures = Figures(scenario, attempted=record.attempted, accepted=len(record.accepted))
    figures.faults = faults
    stats = await drain(system, drain_timeout)
    letters = await dead_letters(system)
    conn = await asyncpg.connect(system.env.database_url, timeout=10)
    try:
        await _check_database(conn, system, record, letters, figures, duplicates_allowed)
    finally:
        await conn.close()
    _check_poison(letters, poison, figures)
    _check_queues(stats, system, figures)
    figures.redeliveries_absorbed = _absorbed(system)
    figures.seconds = time.monotonic() - started
    return figures


async def _rows(conn: asyncpg.Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(sql)]


async def _check_database(
    conn: asyncpg.Connection,
    system: ObservedSystem,
    record: LoadRecord,
    letters: dict[str, list[DeadLetter]],
    figures: Figures,
    duplicates_allowed: bool,
) -> None:
    committed = {str(r["id"]) for r in await _rows(conn, "SELECT id FROM booking.bookings")}
    figures.committed = len(committed)
    missing = set(record.accepted.values()) - committed
    if missing:
        figures.fail(f"{len(missing)} bookings answered 201 but not committed", lost=len(missing))
    confirmed = await _check_booking_outbox(conn, committed, figures)
    recorded_ids: set[str] = set()
    for service in CONSUMER_SERVICES:
        dead = {d.message_id: d.reason for d in letters[service] if d.poison is None}
        await _check_consumer(conn, service, committed, confirmed, dead, figures)
    await _check_reports(conn, letters["booking"], figures)
    recorded_ids = {
        r["message_id"] for r in await _rows(conn, "SELECT message_id FROM email.emails")
    }
    _check_emails(system, recorded_ids, figures, duplicates_allowed)


async def _check_booking_outbox(
    conn: asyncpg.Connection, committed: set[str], figures: Figures
) -> dict[str, str]:
    """I1 for the booking service; returns each committed booking's BookingConfirmed id."""
    rows = await _rows(
        conn, "SELECT event_id, event_type, booking_id, published_at FROM booking.outbox"
    )
    per_booking = Counter(
        str(r["booking_id"]) for r in rows if r["event_type"] == "BookingConfirmed"
    )
    not_once = [b for b in committed if per_booking[b] != 1]
    if not_once:
        figures.fail(
            f"I1: {len(not_once)} bookings without exactly one BookingConfirmed row",
            lost=sum(1 for b in not_once if per_booking[b] == 0),
        )
    unpublished = [r for r in rows if r["published_at"] is None]
    if unpublished:
        figures.fail(
            f"I1: {len(unpublished)} booking outbox rows never published", lost=len(unpublished)
        )
    strangers = {str(r["booking_id"]) for r in rows} - committed
    if strangers:
        figures.fail(f"I3: outbox rows for {len(strangers)} uncommitted bookings")
    return {
        str(r["booking_id"]): str(r["event_id"])
        for r in rows
        if r["event_type"] == "BookingConfirmed"
    }


async def _check_consumer(
    conn: asyncpg.Connection,
    service: str,
    committed: set[str],
    confirmed: dict[str, str],
    dead: dict[str | None, str | None],
    figures: Figures,
) -> None:
    effects = Counter(
        str(r["booking_id"])
        for r in await _rows(conn, f"SELECT booking_id FROM {EFFECT_TABLES[service]}")
    )
    figures.effects[service] = sum(effects.values())
    lost = twice = parked = 0
    for booking in committed:
        if effects[booking] > 1:
            twice += 1
        elif effects[booking] == 0:
            reason = dead.get(confirmed.get(booking))
            if reason:
                parked += 1
            else:
                lost += 1
    figures.dead_lettered += parked
    if lost:
        figures.fail(
            f"I2: {service}: {lost} bookings with no effect and not dead-lettered", lost=lost
        )
    if twice:
        figures.fail(f"I2: {service}: {twice} bookings with more than one effect")
    strangers = set(effects) - committed
    if strangers:
        figures.fail(f"I3: {service}: effects for {len(strangers)} uncommitted bookings")
    outbox = await _rows(
        conn,
        f"SELECT event_type, booking_id, published_at, body::jsonb->>'status' AS status, "
        f"body::jsonb->>'attempts' AS attempts "
        f'FROM "{service}".outbox',
    )
    # A step's done report: its FulfilmentProgressed(done), or an event of its own stamped
    # with the attempts (the voucher's VoucherIssued: shared/events.py, reports_done_for).
    done = Counter(
        str(r["booking_id"])
        for r in outbox
        if (r["event_type"] == "FulfilmentProgressed" and r["status"] == "done")
        or (r["event_type"] == "VoucherIssued" and r["attempts"] is not None)
    )
    wrong = [b for b in effects if done[b] != 1]
    if wrong:
        figures.fail(f"I1: {service}: {len(wrong)} effects without exactly one 'done' report")
    if service == "voucher":
        issued = Counter(str(r["booking_id"]) for r in outbox if r["event_type"] == "VoucherIssued")
        if any(issued[b] != 1 for b in effects):
            figures.fail("I1: voucher: a voucher without exactly one VoucherIssued")
    unpublished = sum(1 for r in outbox if r["published_at"] is None)
    if unpublished:
        figures.fail(f"I1: {service}: {unpublished} outbox rows never published", lost=unpublished)


async def _check_reports(
    conn: asyncpg.Connection, dead: list[DeadLetter], figures: Figures
) -> None:
    """I2 for the booking service as consumer of every consumer's reports."""
    parked = {d.message_id for d in dead}
    handled = {
        str(r["event_id"])
        for r in await _rows(conn, "SELECT event_id FROM booking.processed_events")
    }
    for service in CONSUMER_SERVICES:
        sent = {
            str(r["event_id"])
            for r in await _rows(conn, f'SELECT event_id FROM "{service}".outbox')
        }
        unhandled = sent - handled - parked
        if unhandled:
            figures.fail(
                f"I2: booking: {len(unhandled)} {service} reports never handled",
                lost=len(unhandled),
            )


def _check_emails(
    system: ObservedSystem, recorded: set[str], figures: Figures, duplicates_allowed: bool
) -> None:
    received = Counter(str(m["Message-ID"]) for m in system.smtp.messages)
    figures.emails_received = sum(received.values())
    figures.email_duplicates = sum(n - 1 for n in received.values())
    never_sent = recorded - set(received)
    if never_sent:
        figures.fail(
            f"I5: {len(never_sent)} recorded emails never reached the SMTP server",
            lost=len(never_sent),
        )
    unrecorded = set(received) - recorded
    if unrecorded:
        figures.fail(f"I5: {len(unrecorded)} emails received but never recorded")
    if figures.email_duplicates and not duplicates_allowed:
        figures.fail(f"I5: {figures.email_duplicates} duplicate emails although no process died")


def _check_poison(
    letters: dict[str, list[DeadLetter]], poison: frozenset[str], figures: Figures
) -> None:
    for service in CONSUMER_SERVICES:
        seen = Counter(d.poison for d in letters[service] if d.poison is not None)
        figures.poison_dead_lettered += sum(seen.values())
        if set(seen) != poison or any(n != 1 for n in seen.values()):
            figures.fail(
                f"{service}: poison dead-lettered {dict(seen)} instead of once each",
                lost=len(poison - set(seen)),
            )
        unexplained = [d for d in letters[service] if not d.reason]
        if unexplained:
            figures.fail(f"{service}: {len(unexplained)} dead letters without x-reason")


def _check_queues(stats: dict[str, QueueStats], system: ObservedSystem, figures: Figures) -> None:
    for name in work_queues():
        if stats[name].ready or stats[name].unacked:
            figures.fail(f"I4: {name} ready={stats[name].ready} unacked={stats[name].unacked}")
    running = {s.name for s in system.services.values() if s.alive}
    for service in running:
        queue = CONSUMERS[service].queue
        if stats[queue].consumers < 1:
            figures.fail(f"{queue} has no consumer although {service} runs")
