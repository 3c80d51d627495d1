"""Deliveries recorded several per transaction (BATCH_SIZE > 1), against real RabbitMQ and
PostgreSQL, with the voucher service's real handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID, uuid4

import aio_pika
import asyncpg
import pytest

from services.voucher import bootstrap as voucher_bootstrap
from services.voucher.bootstrap import MIGRATIONS as VOUCHER_MIGRATIONS
from services.voucher.handlers import issue_voucher
from services.voucher.settings import VoucherSettings
from shared.building import consumer_config
from shared.db.migrate import migrate
from shared.db.pool import Connection, create_pool
from shared.db.schemas import service_migrations
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.events import BookingConfirmed, Event
from shared.logging_setup import ContextFilter, message_context
from shared.messaging.batching import FALLBACK_CONCURRENCY, BatchRecorder
from shared.messaging.config import ConsumerConfig
from shared.messaging.consumer import Consumer
from shared.messaging.envelope import event_message
from shared.messaging.handlers import Handler, route
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology, declare_all
from shared.observability.tracing import carried_context, current_traceparent
from shared.settings import ConsumerSettings
from tests.support.amqp import queue_depth
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.stack import effects, equals, fetchval, running_consumer, wait_until

VOUCHER = consumer_topology("voucher")


async def prefill(url: str, events: list[BookingConfirmed]) -> None:
    """Queued before the consumer starts, so deliveries arrive together, as under load."""
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_all(channel)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        for event in events:
            await exchange.publish(event_message(event), routing_key="")
    finally:
        await connection.close()


async def reports(env: TestEnv) -> int:
    """The voucher's reports: FulfilmentProgressed, and the VoucherIssued that are its done
    reports (stamped with their attempts)."""
    return int(
        await fetchval(
            env,
            "SELECT count(*) FROM voucher.outbox WHERE event_type = 'FulfilmentProgressed' "
            "OR (event_type = 'VoucherIssued' AND body::jsonb ? 'attempts' "
            "AND body::jsonb->'attempts' <> 'null')",
        )
    )


async def test_a_batch_records_each_event_once_with_its_report_and_skips_duplicates(
    env: TestEnv,
) -> None:
    events = [confirmed() for _ in range(120)]
    url = env.amqp_url()
    await prefill(url, [*events, *events[:20]])  # 20 delivered twice
    async with running_consumer("voucher", env, prefetch=60, batch_size=30) as process:
        await wait_until(lambda: equals(effects(env, "voucher"), 120), what="120 vouchers")
        await wait_until(lambda: equals(reports(env), 120), what="120 reports")
        await wait_until(
            lambda: process.consumer.stats["acked"] == 140, what="every delivery acked"
        )
    assert process.consumer.stats["duplicates"] == 20
    assert await queue_depth(url, VOUCHER.queue) == 0
    # several deliveries shared a transaction: fewer distinct transaction ids than events
    transactions = await fetchval(
        env, "SELECT count(DISTINCT xmin::text) FROM voucher.processed_events"
    )
    assert transactions < 120


async def test_one_failing_event_in_a_batch_is_dead_lettered_and_the_rest_recorded_once(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    events = [confirmed() for _ in range(40)]
    poison: set[UUID] = {events[7].event_id, events[23].event_id}

    async def issue_unless_poison(event: BookingConfirmed, tx: Connection) -> list[Event]:
        if event.event_id in poison:
            raise PermanentError("refused on purpose")
        return await issue_voucher(event, tx)

    caplog.set_level(logging.INFO, logger="shared.messaging.batching")
    url = env.amqp_url()
    handlers = dict([route(BookingConfirmed, issue_unless_poison)])
    await prefill(url, events)
    async with running_consumer(
        "voucher", env, handlers=handlers, prefetch=40, batch_size=40
    ) as process:
        await wait_until(lambda: equals(effects(env, "voucher"), 38), what="38 vouchers")
        await wait_until(
            lambda: equals(queue_depth(url, VOUCHER.dead_letter_queue), 2), what="2 dead"
        )
    assert await effects(env, "voucher") == 38
    assert await reports(env) == 38 + 2  # done for 38, failed for the two
    assert process.consumer.stats["duplicates"] == 0
    assert "one by one" in caplog.text  # the fallback ran


@pytest.mark.parametrize("service", ["email", "notification"])
def test_batching_is_refused_for_consumers_with_effects_outside_their_database(
    service: str,
) -> None:
    settings = ConsumerSettings(database_url="postgresql://x/y", amqp_url="amqp://x", batch_size=10)
    with pytest.raises(ConfigurationError, match="BATCH_SIZE must be 1"):
        consumer_config(service, settings)


@pytest.mark.parametrize(
    "death",
    [
        "cancelled_mid_transaction",
        "cancelled_before_it_started",
        "a_callback_raised",
        "closed_mid_transaction",  # BatchRecorder.close(), as the consumer calls it at stop
    ],
)
async def test_a_batch_task_that_dies_settles_every_waiting_delivery_with_a_transient_error(
    env: TestEnv, death: str
) -> None:
    """The batch task can die past its own handling (cancelled, or a callback outside its
    try raising): every record() waiting on it, in its batch or queued behind it, must get a
    TransientError (the consumer's retry path) promptly, and the recorder must work again."""
    pool = await asyncpg.create_pool(env.database_url, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool, "voucher", service_migrations(VOUCHER_MIGRATIONS))
    in_transaction = asyncio.Event()
    never = asyncio.Event()
    committed: list[int] = []
    one_by_one: list[Event] = []

    async def issue_and_hold(event: BookingConfirmed, tx: Connection) -> list[Event]:
        emitted = await issue_voucher(event, tx)  # a real row, in the batch's transaction
        held = death in ("cancelled_mid_transaction", "closed_mid_transaction")
        if held and not in_transaction.is_set():
            in_transaction.set()
            await never.wait()  # holds the first batch inside its open transaction
        return emitted

    def on_commit() -> None:
        committed.append(1)
        if death == "a_callback_raised" and len(committed) == 1:
            raise RuntimeError("on_commit failed")  # after the try of _record_batch

    async def handle_one(event: Event, attempts: int) -> None:
        one_by_one.append(event)  # the batch's own fallback: must not be what settles them

    recorder = BatchRecorder(
        pool,
        "voucher",
        dict([route(BookingConfirmed, issue_and_hold)]),
        progress=lambda event, emitted, attempts: (list(emitted), None),
        handle_one=handle_one,
        on_commit=on_commit,
        count=lambda outcome: None,
        max_size=3,
    )
    events = [confirmed() for _ in range(7)]  # a batch of 3, and 4 waiting behind it
    try:
        deliveries = [asyncio.ensure_future(recorder.record(e, 1)) for e in events]
        if death == "cancelled_before_it_started":
            await asyncio.sleep(0)  # each record() has queued its delivery and started the task
            task = recorder._running
            assert task is not None
            assert len(recorder._waiting) == len(events)  # no batch taken yet: not started
            task.cancel()  # before its first step: the coroutine's body never runs
        elif death == "cancelled_mid_transaction":
            await asyncio.wait_for(in_transaction.wait(), 5)
            task = recorder._running
            assert task is not None
            task.cancel()
        elif death == "closed_mid_transaction":
            await asyncio.wait_for(in_transaction.wait(), 5)
            await asyncio.wait_for(recorder.close(), 5)
            assert recorder._running is None
        outcomes = await asyncio.wait_for(asyncio.gather(*deliveries, return_exceptions=True), 5)
        assert [type(o) for o in outcomes] == [TransientError] * len(events), outcomes
        assert all("batch recording was interrupted" in str(o) for o in outcomes)
        assert one_by_one == []
        recorded = 3 if death == "a_callback_raised" else 0  # committed before on_commit raised
        assert await fetchval(env, "SELECT count(*) FROM voucher.processed_events") == recorded
        assert await effects(env, "voucher") == recorded
        # not wedged: the next delivery starts a new batch task, and is recorded
        await asyncio.wait_for(recorder.record(events[-1], 2), 5)
        assert await effects(env, "voucher") == recorded + 1
    finally:
        never.set()
        await pool.close()


@asynccontextmanager
async def voucher_recorder(
    env: TestEnv, handlers: dict[str, Handler], batch_size: int = 50, linger: float = 0.0
) -> AsyncIterator[tuple[BatchRecorder, asyncpg.Pool]]:
    """The batch recorder of a real voucher Consumer (its own one-by-one path as the
    fallback), fed directly: deliveries recorded in one loop turn make one batch."""
    pool = await create_pool(env.database_url, max_size=30)
    try:
        await migrate(pool, "voucher", service_migrations(VOUCHER_MIGRATIONS))
        config = ConsumerConfig(
            service="voucher",
            amqp_url=env.amqp_url(),
            batch_size=batch_size,
            batch_linger=linger,
        )
        publisher = ConfirmingPublisher(env.amqp_url(), name="unused")  # never connects
        consumer = Consumer(config, handlers, pool, publisher)
        assert consumer._batch is not None
        yield consumer._batch, pool
    finally:
        await pool.close()


def new_traceparent() -> str:
    return f"00-{uuid4().hex}-{uuid4().hex[:16]}-01"


async def deliver(recorder: BatchRecorder, event: Event, traceparent: str | None) -> None:
    """One delivery as the consumer runtime has it in hand: its trace and log fields set."""
    headers = {"traceparent": traceparent} if traceparent else {}
    with (
        message_context(event_id=event.event_id, booking_id=event.booking_id),
        carried_context(headers),
    ):
        await recorder.record(event, 1)


async def outbox_traceparents(env: TestEnv) -> list[tuple[UUID, str, str | None]]:
    conn = await asyncpg.connect(env.database_url)
    try:
        rows = await conn.fetch("SELECT booking_id, event_type, traceparent FROM voucher.outbox")
    finally:
        await conn.close()
    return [(r["booking_id"], r["event_type"], r["traceparent"]) for r in rows]


async def test_each_delivery_of_a_failed_batch_is_retried_in_its_own_trace_and_log_context(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    events = [confirmed() for _ in range(3)]
    poison = events[2].event_id  # forces the one-by-one fallback for the whole batch
    traceparents = {e.event_id: new_traceparent() for e in events}
    handler_log = logging.getLogger("test.batching.handler")
    seen: list[tuple[UUID, str | None]] = []

    async def issue_unless_poison(event: BookingConfirmed, tx: Connection) -> list[Event]:
        seen.append((event.event_id, current_traceparent()))
        handler_log.info("issuing for %s", event.event_id)
        if event.event_id == poison:
            raise PermanentError("refused on purpose")
        return await issue_voucher(event, tx)

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter("voucher", "voucher"))  # log fields, as in prod
    async with voucher_recorder(env, dict([route(BookingConfirmed, issue_unless_poison)])) as (
        recorder,
        _,
    ):
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(deliver(recorder, e, traceparents[e.event_id]) for e in events),
                return_exceptions=True,
            ),
            10,
        )
    assert [type(o) for o in outcomes] == [type(None), type(None), PermanentError], outcomes
    assert "one by one" in caplog.text  # the batch failed; each was handled again alone
    # Each event's outbox row (its VoucherIssued, which is also its done report) carries
    # its own traceparent.
    rows = await outbox_traceparents(env)
    by_booking = {e.booking_id: traceparents[e.event_id] for e in events}
    assert sorted(event_type for _, event_type, _ in rows) == ["VoucherIssued"] * 2
    assert [(b, t) for b, _, t in rows] == [(b, by_booking[b]) for b, _, _ in rows]
    # The handler saw its own trace, or none (in the batch): never another delivery's.
    assert all(tp in (None, traceparents[event_id]) for event_id, tp in seen), seen
    assert {event_id for event_id, tp in seen if tp} == set(traceparents)  # fallback: own
    # Likewise the log fields of each line the handler wrote.
    # (the event a line is about, the event_id field it carries)
    lines = [
        (r.getMessage().rsplit(" ", 1)[1], getattr(r, "event_id", None))
        for r in caplog.records
        if r.name == handler_log.name
    ]
    # in the batch as well as alone
    assert all(field == about for about, field in lines), lines
    assert {field for _, field in lines} == {str(e.event_id) for e in events}


async def test_a_batched_delivery_without_a_trace_does_not_take_the_trace_of_the_first(
    env: TestEnv,
) -> None:
    traced, untraced = confirmed(), confirmed()
    traceparent = new_traceparent()
    async with voucher_recorder(env, dict([route(BookingConfirmed, issue_voucher)])) as (
        recorder,
        _,
    ):
        await asyncio.wait_for(
            asyncio.gather(
                deliver(recorder, traced, traceparent), deliver(recorder, untraced, None)
            ),
            10,
        )
    # one batch: both recorded in the same transaction
    assert await fetchval(env, "SELECT count(DISTINCT xmin::text) FROM voucher.vouchers") == 1
    rows = await outbox_traceparents(env)
    assert len(rows) == 2  # a VoucherIssued each, which is also its done report
    expected = {traced.booking_id: traceparent, untraced.booking_id: None}
    assert [(b, t) for b, _, t in rows] == [(b, expected[b]) for b, _, _ in rows]


async def test_the_fallback_of_a_big_batch_holds_no_more_than_a_few_connections_at_once(
    env: TestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    events = [confirmed() for _ in range(30)]
    poison = events[0].event_id
    in_transaction: list[int] = []  # sessions of the test database in a transaction

    async def issue_slowly(event: BookingConfirmed, tx: Connection) -> list[Event]:
        if event.event_id == poison:
            raise PermanentError("refused on purpose")
        emitted = await issue_voucher(event, tx)
        await asyncio.sleep(0.1)  # long enough for every transaction started to overlap
        in_transaction.append(
            await tx.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND xact_start IS NOT NULL"
            )
        )
        return emitted

    caplog.set_level(logging.INFO, logger="shared.messaging.batching")
    handlers = dict([route(BookingConfirmed, issue_slowly)])
    async with voucher_recorder(env, handlers, batch_size=len(events)) as (recorder, pool):
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(recorder.record(e, 1) for e in events), return_exceptions=True),
            30,
        )
        assert pool.get_max_size() > FALLBACK_CONCURRENCY * 2  # the pool is not the bound
    assert "batch of 30 failed" in caplog.text
    assert [type(o) for o in outcomes] == [PermanentError] + [type(None)] * 29, outcomes
    assert await effects(env, "voucher") == 29
    assert len(in_transaction) == 29  # the fallback's (the batch failed at its first event)
    assert max(in_transaction) <= FALLBACK_CONCURRENCY, in_transaction
    assert max(in_transaction) > 1  # a few at a time, not one by one


async def test_a_stopped_consumer_leaves_no_batch_holding_a_connection(env: TestEnv) -> None:
    """Stopped while a batch is stuck in its transaction: once run() has returned (the
    grace period over), the batch is cancelled and its connection given back, so closing
    the pool does not wait for it."""
    held, release = asyncio.Event(), asyncio.Event()

    async def issue_and_hold(event: BookingConfirmed, tx: Connection) -> list[Event]:
        emitted = await issue_voucher(event, tx)
        held.set()
        await release.wait()  # stuck inside the batch's open transaction
        return emitted

    url = env.amqp_url()
    await prefill(url, [confirmed() for _ in range(3)])
    settings = VoucherSettings(
        database_url=env.database_url,
        amqp_url=url,
        amqp_connect_timeout=2.0,
        amqp_publish_timeout=2.0,
        prefetch=10,
        batch_size=10,
        shutdown_grace=0.2,
        http_port=0,
    )
    process = await voucher_bootstrap.bootstrap(
        settings, handlers=dict([route(BookingConfirmed, issue_and_hold)])
    )
    stop = asyncio.Event()
    run = asyncio.create_task(process.run(stop))
    try:
        await asyncio.wait_for(held.wait(), 10)
        stop.set()
        await asyncio.wait_for(run, 10)
        open_transactions = await fetchval(
            env,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND xact_start IS NOT NULL "
            "AND pid <> pg_backend_pid()",
        )
        assert open_transactions == 0
        assert process.pool.get_idle_size() == process.pool.get_size()  # none held
        assert await effects(env, "voucher") == 0  # rolled back: redelivered later
        assert await queue_depth(url, VOUCHER.queue) == 3
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(run, 10)
        await process.close()


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one_by_one"])
async def test_the_relay_is_woken_only_when_a_delivery_wrote_to_the_outbox(
    env: TestEnv, batched: bool
) -> None:
    """The booking service's consumer of reports writes nothing to its outbox: waking its
    relay after each commit only cost a claim statement on an empty outbox."""
    pool = await create_pool(env.database_url, max_size=5)
    woken: list[str] = []

    async def emit_when_asked(event: BookingConfirmed, tx: Connection) -> list[Event]:
        return await issue_voucher(event, tx) if event.guest_name == "emits" else []

    try:
        await migrate(pool, "voucher", service_migrations(VOUCHER_MIGRATIONS))
        config = ConsumerConfig(
            service="voucher",
            amqp_url=env.amqp_url(),
            batch_size=50 if batched else 1,
            report_progress=False,  # as the booking service consumes reports
        )
        publisher = ConfirmingPublisher(env.amqp_url(), name="unused")  # never connects
        handlers = dict([route(BookingConfirmed, emit_when_asked)])
        consumer = Consumer(
            config, handlers, pool, publisher, on_outbox_write=lambda: woken.append("woken")
        )

        async def handle(event: BookingConfirmed) -> None:
            if consumer._batch is not None:
                await consumer._batch.record(event, 1)
            else:
                await consumer._handle_once(event, 1)

        await asyncio.gather(*(handle(confirmed()) for _ in range(3)))
        assert woken == []
        await handle(confirmed(guest_name="emits"))
        assert woken == ["woken"]
    finally:
        await pool.close()


def batch_sizes_recorded() -> tuple[list[int], dict[str, Handler]]:
    """Voucher handlers with a batch form that notes the size of each batch it is given."""
    sizes: list[int] = []

    async def issue_each(events: Sequence[BookingConfirmed], tx: Connection) -> None:
        sizes.append(len(events))
        for event in events:
            await issue_voucher(event, tx)

    return sizes, dict([route(BookingConfirmed, issue_voucher, batch=issue_each)])


async def trickle(recorder: BatchRecorder, events: list[BookingConfirmed], gap: float) -> None:
    """Deliveries that come one at a time, ``gap`` seconds apart, as reports do."""
    pending = []
    for event in events:
        pending.append(asyncio.ensure_future(recorder.record(event, 1)))
        await asyncio.sleep(gap)
    await asyncio.wait_for(asyncio.gather(*pending), 10)


@pytest.mark.parametrize("linger", [2.0, 0.0], ids=["2s", "off"])
async def test_deliveries_that_trickle_in_within_the_linger_share_one_transaction(
    env: TestEnv, linger: float
) -> None:
    """Without a linger, deliveries 50 ms apart (far longer than a transaction here) get
    transactions of their own (two may meet behind a slow one on a busy machine); with one,
    they wait for each other, up to the linger."""
    sizes, handlers = batch_sizes_recorded()
    async with voucher_recorder(env, handlers, batch_size=10, linger=linger) as (recorder, _):
        await trickle(recorder, [confirmed() for _ in range(5)], gap=0.05)
    assert sum(sizes) == 5
    assert (len(sizes) == 1) if linger else (len(sizes) >= 3)
    assert await effects(env, "voucher") == 5


async def test_a_batch_that_fills_up_does_not_wait_out_the_linger(env: TestEnv) -> None:
    """A linger of a minute: a batch that fills up while it waits is recorded at once, and
    so is one that is full from the start."""
    sizes, handlers = batch_sizes_recorded()
    async with voucher_recorder(env, handlers, batch_size=3, linger=60.0) as (recorder, _):
        first = asyncio.ensure_future(recorder.record(confirmed(), 1))
        await asyncio.sleep(0.1)  # its batch is waiting for more
        await asyncio.wait_for(
            asyncio.gather(first, *(recorder.record(confirmed(), 1) for _ in range(2))), 10
        )
        await asyncio.wait_for(
            asyncio.gather(*(recorder.record(confirmed(), 1) for _ in range(3))), 10
        )
    assert sizes == [3, 3]
    assert await effects(env, "voucher") == 6


async def test_a_recorder_closed_while_it_lingers_settles_its_deliveries_for_a_retry(
    env: TestEnv,
) -> None:
    """Stopped during the wait: nothing recorded, nothing held, each delivery gets the
    TransientError of the retry path at once (not after the linger)."""
    sizes, handlers = batch_sizes_recorded()
    async with voucher_recorder(env, handlers, batch_size=10, linger=60.0) as (recorder, pool):
        deliveries = [asyncio.ensure_future(recorder.record(confirmed(), 1)) for _ in range(2)]
        await asyncio.sleep(0.1)  # the batch task is waiting for more
        await asyncio.wait_for(recorder.close(), 5)
        outcomes = await asyncio.wait_for(asyncio.gather(*deliveries, return_exceptions=True), 5)
        assert [type(o) for o in outcomes] == [TransientError, TransientError]
        assert pool.get_idle_size() == pool.get_size()
    assert sizes == []
    assert await effects(env, "voucher") == 0
