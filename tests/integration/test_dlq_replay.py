"""Dead-letter replay against real RabbitMQ and PostgreSQL: the operator's day (the SMTP
relay was down, it is fixed, the emails are replayed once each), filters, dry runs, purges
and concurrent replays."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared import registry
from shared.deadletters.model import Filters
from shared.messaging.topology import consumer_topology
from tests.support.amqp import queue_depth, take
from tests.support.dlq import cancelled, dlq_ops, message_ids, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.smtp import smtp_server
from tests.support.stack import (
    all_consumers,
    booking_api,
    effects,
    equals,
    fetchval,
    running_consumer,
    spread_booking,
    wait_until,
)

EMAIL = consumer_topology("email")


async def _email_status(client: httpx.AsyncClient, booking_id: str) -> str:
    booking = (await client.get(f"/bookings/{booking_id}")).json()
    status: str = booking["fulfilment"]["email"]["status"]
    return status


async def _all_email(client: httpx.AsyncClient, ids: list[str], status: str) -> bool:
    return all([await _email_status(client, b) == status for b in ids])


async def _processed(env: TestEnv, service: str) -> int:
    return int(await fetchval(env, f"SELECT count(*) FROM {service}.processed_events"))


async def test_replay_after_the_relay_is_fixed_sends_each_email_once_and_nothing_else_reruns(
    env: TestEnv,
) -> None:
    n = 6
    url = env.amqp_url()
    async with (
        smtp_server() as smtp,
        all_consumers(env, smtp, max_attempts=2),
        booking_api(env) as (client, _),
        dlq_ops(env) as ops,
    ):
        smtp.answer = "451 4.3.0 relay down, try later"
        ids = [
            (await client.post("/bookings", json=spread_booking(i))).json()["id"] for i in range(n)
        ]
        await wait_until(lambda: _all_email(client, ids, "failed"), what="email failed")
        await wait_until(lambda: equals(queue_depth(url, EMAIL.dead_letter_queue), n), what="dlq")
        for other in ("voucher", "notification"):
            await wait_until(lambda o=other: equals(effects(env, o), n), what=f"{other} done")
        before = {s: await _processed(env, s) for s in ("voucher", "notification")}
        smtp.answer = None  # the relay is fixed

        summary = await ops.replay("email", Filters(select_all=True), actor="test")

        assert (summary.replayed, summary.skipped, summary.failed) == (n, 0, 0)
        await wait_until(lambda: _all_email(client, ids, "done"), what="email done")
        await wait_until(lambda: equals(effects(env, "email"), n), what="emails recorded")
        again = await ops.replay("email", Filters(select_all=True), actor="test")
        await asyncio.sleep(0.5)  # time for any wrong second effect to show
        after = {s: await _processed(env, s) for s in ("voucher", "notification")}
        history = await ops.history()
    assert len(smtp.envelopes) == n
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["ada@example.com"] * n
    assert await effects(env, "email") == n
    assert after == before == {"voucher": n, "notification": n}
    assert await effects(env, "voucher") == n
    assert again.seen == 0
    assert await queue_depth(url, EMAIL.dead_letter_queue) == 0
    assert [h.operation for h in history] == ["replay", "replay"]
    assert history[1].replayed == n
    assert history[1].status == "completed"
    assert history[1].filters == {"select_all": True}


async def test_each_filter_replays_only_its_messages_and_the_others_stay(env: TestEnv) -> None:
    url = env.amqp_url()
    old = datetime.now(UTC) - timedelta(hours=3)
    exhausted = await park(url, "email", [confirmed() for _ in range(3)])
    permanent = await park(url, "email", [confirmed()], reason="permanent-failure")
    cancellations = await park(url, "email", [cancelled() for _ in range(2)])
    stale = await park(url, "email", [confirmed() for _ in range(2)], failed_at=old)
    everything = exhausted + permanent + cancellations + stale
    cases: list[tuple[dict[str, Any], list[str] | None]] = [
        ({"ids": (exhausted[1], stale[0])}, [exhausted[1], stale[0]]),
        ({"reason": "permanent-failure"}, permanent),
        ({"event_type": "BookingCancelled"}, cancellations),
        ({"older_than": timedelta(hours=2)}, stale),
        ({"select_all": True, "reason": "retries-exhausted", "limit": 2}, None),
    ]
    replayed: set[str] = set()
    async with dlq_ops(env) as ops:
        for fields, expected in cases:
            filters = Filters(**fields)
            dry = await ops.replay("email", filters, actor="test", dry_run=True)
            assert await queue_depth(url, EMAIL.queue) == 0, fields
            assert sorted(await message_ids(url, EMAIL.dead_letter_queue)) == sorted(
                set(everything) - replayed
            ), f"dry run changed the queue: {fields}"
            summary = await ops.replay("email", filters, actor="test")
            got = {str(m.message_id) for m in await take(url, EMAIL.queue, summary.replayed)}
            assert summary.replayed == dry.replayed == len(got), fields
            assert summary.failed == 0
            if expected is not None:
                assert got == set(expected) - replayed, fields
            else:  # the limit: any two of those still parked with that reason
                assert len(got) == 2
                assert got <= set(exhausted) | set(stale)
            assert not got & replayed, f"replayed twice: {fields}"
            replayed |= got
            left = set(await message_ids(url, EMAIL.dead_letter_queue))
            assert left == set(everything) - replayed, fields
        # --rate: 30 messages at 50/s go out in bursts of 5, the last at 0.5 s at the earliest.
        await park(url, "notification", [confirmed() for _ in range(30)])
        started = time.monotonic()
        paced = await ops.replay("notification", Filters(select_all=True), actor="t", rate=50)
        elapsed = time.monotonic() - started
    assert paced.replayed == 30
    assert elapsed >= 0.5


async def test_two_concurrent_replays_of_one_queue_give_each_effect_once(env: TestEnv) -> None:
    n = 20
    url = env.amqp_url()
    ids = await park(url, "email", [confirmed() for _ in range(n)])
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port),
        dlq_ops(env, batch_size=5) as one,
        dlq_ops(env, batch_size=7) as two,
    ):
        first, second = await asyncio.gather(
            one.replay("email", Filters(select_all=True), actor="terminal-1", rate=200),
            two.replay("email", Filters(select_all=True), actor="terminal-2", rate=200),
        )
        await wait_until(lambda: equals(effects(env, "email"), n), what="every email")
        await asyncio.sleep(0.5)
    assert first.failed == second.failed == 0
    assert first.replayed + second.replayed >= n
    assert len(smtp.envelopes) == n
    assert len({m["Message-ID"] for m in smtp.messages}) == n
    assert await effects(env, "email") == n
    assert await queue_depth(url, EMAIL.dead_letter_queue) == 0
    assert len(set(ids)) == n


async def test_a_replayed_message_that_fails_again_returns_with_its_history_and_fresh_attempts(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port, max_attempts=3),
        dlq_ops(env) as ops,
    ):
        smtp.answer = "451 4.3.0 still down"
        [event_id] = await park(url, "email", [confirmed()], attempts=3)
        [parked] = await ops.show("email")
        summary = await ops.replay("email", Filters(ids=(event_id,)), actor="test")
        await wait_until(lambda: equals(queue_depth(url, EMAIL.dead_letter_queue), 1), what="dlq")
        [again] = await ops.show("email")
    reports = await fetchval(
        env,
        "SELECT array_agg((body::json->>'status') || ' ' || (body::json->>'attempts') ORDER BY id)"
        " FROM email.outbox WHERE event_type = 'FulfilmentProgressed'",
    )
    # What the booking shows for the email step: retrying, then failed, counted in full.
    assert reports == ["retrying 4", "retrying 5", "failed 6"]
    assert summary.replayed == 1
    assert smtp.refused == 3  # a fresh set of three attempts after the replay
    assert again.message_id == event_id
    assert again.attempts == 6  # the whole history: three before, three after
    assert again.replay_count == 1
    assert again.first_failure_at == parked.first_failure_at
    assert again.last_failure_at is not None
    assert parked.last_failure_at is not None
    assert again.last_failure_at > parked.last_failure_at
    assert again.reason == "retries-exhausted"


async def test_list_and_show_leave_messages_in_place_and_purge_takes_only_what_it_is_told(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    failed_at = datetime.now(UTC) - timedelta(minutes=10)
    ids = await park(url, "notification", [confirmed() for _ in range(4)], failed_at=failed_at)
    doomed = await park(url, "voucher", [confirmed() for _ in range(5)])
    async with dlq_ops(env) as ops:
        infos = {i.service: i for i in await ops.list_queues()}
        shown = await ops.show("notification", limit=3)
        shown_again = await ops.show("notification.dlq", limit=10)
        some = await ops.purge("voucher.dlq", Filters(ids=(doomed[0], doomed[3])), actor="test")
        left = sorted(await message_ids(url, "voucher.dlq"))
        everything = await ops.purge("voucher", Filters(select_all=True), actor="test")
        history = await ops.history(queue="voucher")
    assert infos["notification"].messages == 4
    assert infos["voucher"].messages == 5
    age = infos["notification"].oldest_age_seconds
    assert age is not None
    assert 590 < age < 900
    assert infos["email"].messages == 0
    assert infos["email"].oldest_age_seconds is None
    assert set(infos) == {*registry.NAMES, "booking"}
    assert [m.message_id for m in shown] == ids[:3]
    assert sorted(str(m.message_id) for m in shown_again) == sorted(ids)
    assert shown[0].event_type == "BookingConfirmed"
    assert shown[0].reason == "retries-exhausted"
    assert shown[0].attempts == 5
    assert shown[0].exception == "RuntimeError: SMTP relay down"
    assert await queue_depth(url, "notification.dlq") == 4
    assert (some.purged, some.skipped) == (2, 3)
    assert left == sorted([doomed[1], doomed[2], doomed[4]])
    assert everything.purged == 3
    assert await queue_depth(url, "voucher.dlq") == 0
    assert await queue_depth(url, consumer_topology("voucher").queue) == 0
    assert [(h.operation, h.purged) for h in history] == [("purge", 3), ("purge", 2)]
