"""Failure groups of the dead-letter console against a real broker, database and SMTP server:
a real failure grouped, a group retried to its consumer only, each email sent once, and the
index following the queues (which stay the truth)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from shared.deadletters.canary import canary_retry
from shared.deadletters.editing import retry_edited
from shared.deadletters.errors import InvalidRequest, UnknownGroup
from shared.deadletters.groups import FailureGroups
from shared.deadletters.index import DeadLetterIndex
from shared.deadletters.pages import GroupQuery, MessageQuery
from shared.events import BookingConfirmed
from shared.messaging.envelope import event_message
from shared.messaging.topology import EVENTS_EXCHANGE, consumer_topology
from tests.support.amqp import publish_raw, queue_depth
from tests.support.dlq import dlq_ops, message_ids, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.smtp import smtp_server
from tests.support.stack import booking_api, equals, running_consumer, wait_until

EMAIL = consumer_topology("email")
OTHERS = [consumer_topology(s).queue for s in ("voucher", "notification")]
REFUSED = "nobody@example.com"
TOKEN = "s3cret-admin-token-for-tests"


@asynccontextmanager
async def failure_groups(env: TestEnv) -> AsyncIterator[FailureGroups]:
    async with dlq_ops(env) as ops:
        assert ops.audit is not None
        yield FailureGroups(ops, DeadLetterIndex(ops.audit.pool, ops.audit))


def _parked(url: str, depth: int) -> Callable[[], Awaitable[bool]]:
    """For wait_until: email's dead-letter queue holds ``depth`` messages."""
    return lambda: equals(queue_depth(url, EMAIL.dead_letter_queue), depth)


async def _published_and_parked(url: str, events: list[BookingConfirmed], depth: int) -> None:
    for event in events:
        await publish_raw(url, EVENTS_EXCHANGE, event_message(event))
    await wait_until(_parked(url, depth), what="all parked")


async def test_a_refused_address_makes_one_group_and_retrying_it_sends_each_email_once(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    events = [confirmed(guest_email=REFUSED) for _ in range(3)]
    [unrelated] = await park(url, "email", [confirmed()])  # another failure, another group
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port),
        failure_groups(env) as groups,
    ):
        smtp.refused_recipients.add(REFUSED)
        await _published_and_parked(url, events, 4)
        assert (await groups.sync())[EMAIL.dead_letter_queue] == 4
        listed = await groups.index.groups(GroupQuery())
        [refused] = [g for g in listed if g.count == 3]
        assert len(listed) == 2
        assert refused.consumer == "email"
        assert (refused.event_type, refused.event_version) == ("BookingConfirmed", 1)
        assert refused.exception_type == "PermanentError"
        assert refused.frame is not None
        assert refused.frame.startswith("services.email.")
        assert "<email>" in refused.reason_pattern
        assert REFUSED not in refused.reason_pattern
        assert sum(refused.trend) == 3

        [dry] = await groups.retry(refused.fingerprint, actor="test", dry_run=True)
        assert (dry.replayed, dry.skipped, dry.dry_run) == (3, 1, True)
        assert await queue_depth(url, EMAIL.dead_letter_queue) == 4  # nothing moved
        others_before = [await queue_depth(url, q) for q in OTHERS]

        smtp.refused_recipients.clear()  # the address now exists
        [done] = await groups.retry(refused.fingerprint, actor="test")
        await wait_until(lambda: len(smtp.envelopes) == 3, what="three emails")
        await asyncio.sleep(1.0)  # time for a duplicate to show up, if one were sent
        after = await groups.index.groups(GroupQuery())
        history = await groups.ops.history()

    assert (done.replayed, done.skipped, done.failed) == (3, 1, 0)
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(
        f"<{e.event_id}@hotel-booking>" for e in events
    )
    assert [await queue_depth(url, q) for q in OTHERS] == others_before  # email's alone
    # The other group's message stayed, and the index shows it alone.
    assert await message_ids(url, EMAIL.dead_letter_queue) == [unrelated]
    assert [g.count for g in after] == [1]
    assert after[0].fingerprint != refused.fingerprint
    assert [(e.operation, e.dry_run, e.replayed) for e in history][-2:] == [
        ("replay", False, 3),
        ("replay", True, 3),
    ]
    assert history[-1].filters == {"fingerprint": refused.fingerprint}


async def test_the_index_is_derived_a_stale_row_moves_nothing_and_a_new_message_is_still_taken(
    env: TestEnv,
) -> None:
    """The queue decides: a group retried from an index that missed a message still takes
    it (it has the group's fingerprint), and one the index lists but the queue no longer
    holds cannot be sent."""
    url = env.amqp_url()
    first = await park(url, "voucher", [confirmed() for _ in range(2)])
    async with failure_groups(env) as groups:
        await groups.sync(["voucher"])
        [group] = await groups.index.groups(GroupQuery())
        later = await park(url, "voucher", [confirmed()])  # not in the index yet
        [summary] = await groups.retry(group.fingerprint, actor="test")
        moved = await message_ids(url, consumer_topology("voucher").queue)
        left = await groups.index.messages(MessageQuery(fingerprint=group.fingerprint))
        with pytest.raises(UnknownGroup):  # gone from the index with its messages
            await groups.retry(group.fingerprint, actor="test")
    assert summary.replayed == 3
    assert sorted(moved) == sorted(first + later)  # each once
    assert left.messages == []


async def test_the_console_and_its_api_want_a_session_or_the_token_and_a_csrf_token(
    env: TestEnv,
) -> None:
    await park(env.amqp_url(), "email", [confirmed()])
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        anonymous = await client.get("/admin/console")
        api_without = await client.get("/admin/dlq/groups")
        wrong = await client.post("/admin/console/login", data={"token": "guess"})
        signed = await client.post(
            "/admin/console/login", data={"token": TOKEN, "operator": "alice"}
        )
        cookie = signed.headers["set-cookie"]
        page = await client.get("/admin/console")
        fingerprint = (await client.get("/admin/dlq/groups", headers=_auth())).json()
        no_csrf = await client.post(f"/admin/console/groups/{_first(fingerprint)}/retry")
        foreign = await client.post(
            f"/admin/console/groups/{_first(fingerprint)}/retry",
            headers={"Origin": "https://evil.example", "X-CSRF-Token": _csrf(page.text)},
        )
        dry = await client.post(
            f"/admin/console/groups/{_first(fingerprint)}/retry",
            data={"dry_run": "1"},
            headers={"X-CSRF-Token": _csrf(page.text)},  # a plain form: the whole result
        )
        history = (await client.get("/admin/dlq/history", headers=_auth())).json()
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/admin/console/login"
    assert api_without.status_code == 401
    assert wrong.status_code == 401
    assert "That is not the admin token" in wrong.text
    assert signed.status_code == 303
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin/console"):
        assert attribute.lower() in cookie.lower()
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert no_csrf.status_code == 403
    assert foreign.status_code == 403
    assert dry.status_code == 200
    assert "Dry run: 1 message(s) of email.dlq would be retried" in dry.text
    assert history[0]["actor"] == "console:alice@127.0.0.1"
    assert history[0]["dry_run"] is True


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _first(page: dict[str, list[dict[str, str]]]) -> str:
    return page["groups"][0]["fingerprint"]


def _csrf(html: str) -> str:
    return html.split('"X-CSRF-Token": "', 1)[1].split('"', 1)[0]


async def test_a_canary_retry_halts_when_its_first_message_fails_again_then_sends_each_once(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    events = [confirmed(guest_email=REFUSED) for _ in range(8)]
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port),
        failure_groups(env) as groups,
    ):
        smtp.refused_recipients.add(REFUSED)
        await _published_and_parked(url, events, 8)
        await groups.sync()
        [group] = await groups.index.groups(GroupQuery())

        halted = await canary_retry(groups, group.fingerprint, actor="test", settle=10)
        marked = await groups.index.group(group.fingerprint)
        again = await groups.index.messages(MessageQuery(fingerprint=group.fingerprint))

        smtp.refused_recipients.clear()
        done = await canary_retry(groups, group.fingerprint, actor="test", settle=1)
        await wait_until(lambda: len(smtp.envelopes) == 8, what="eight emails")
        await asyncio.sleep(1.0)
        left = await groups.index.groups(GroupQuery(include_hidden=True))

    assert halted.halted
    assert [s.replayed for s in halted.stages] == [1]  # the 5, 50 and the rest never went
    assert len(halted.failed_again) == 1
    assert marked is not None
    assert (marked.count, marked.replayed_before) == (8, 1)  # marked, and all still parked
    assert [m.message_id for m in again.messages if m.replay_count] == halted.failed_again
    assert not done.halted
    assert [s.replayed for s in done.stages] == [1, 5, 2]
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(
        f"<{e.event_id}@hotel-booking>" for e in events
    )
    assert left == []


async def test_a_canary_halts_even_when_its_message_fails_again_before_the_replay_returns(
    env: TestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the consumer can fail the replayed message again before the replay has
    returned: the canary must still see it back (it once counted the queue only after)."""
    url = env.amqp_url()
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port),
        failure_groups(env) as groups,
    ):
        smtp.refused_recipients.add(REFUSED)
        await _published_and_parked(url, [confirmed(guest_email=REFUSED) for _ in range(3)], 3)
        await groups.sync()
        [group] = await groups.index.groups(GroupQuery())
        replay = groups.ops.replay

        async def replay_slowly(*args: object, **kwargs: object) -> object:
            summary = await replay(*args, **kwargs)  # type: ignore[arg-type]
            await wait_until(_parked(url, 3), what="the replayed message back before it returns")
            return summary

        monkeypatch.setattr(groups.ops, "replay", replay_slowly)
        report = await canary_retry(groups, group.fingerprint, actor="test", settle=5)

    assert report.halted
    assert [s.replayed for s in report.stages] == [1]
    assert len(report.failed_again) == 1


async def test_an_edited_message_is_sent_instead_of_the_original_which_the_audit_keeps(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    typo = "ada@exmple.com"
    event = confirmed(guest_email=typo)
    async with (
        smtp_server() as smtp,
        running_consumer("email", env, smtp_port=smtp.port),
        failure_groups(env) as groups,
    ):
        smtp.refused_recipients.add(typo)
        await _published_and_parked(url, [event], 1)
        await groups.sync()
        [group] = await groups.index.groups(GroupQuery())
        [row] = (await groups.index.messages(MessageQuery(fingerprint=group.fingerprint))).messages
        fixed = json.dumps(json.loads(event.to_json()) | {"guest_email": "ada@example.com"})
        with pytest.raises(InvalidRequest, match="reason"):
            await retry_edited(groups, row.id, fixed, reason=" ", actor="test")
        preview = await retry_edited(groups, row.id, fixed, reason="typo", actor="t", preview=True)
        assert await queue_depth(url, EMAIL.dead_letter_queue) == 1  # a preview sends nothing
        done = await retry_edited(groups, row.id, fixed, reason="typo in the domain", actor="t")
        await wait_until(lambda: len(smtp.envelopes) == 1, what="the email")
        await asyncio.sleep(1.0)
        [entry] = await groups.ops.history()
    assert '+  "guest_email": "ada@example.com",' in preview.diff
    assert preview.summary is None
    assert done.summary is not None
    assert done.summary.replayed == 1
    assert [e.rcpt_tos for e in smtp.envelopes] == [["ada@example.com"]]  # the edit, once
    assert await queue_depth(url, EMAIL.dead_letter_queue) == 0  # the original is gone
    assert (entry.operation, entry.replayed) == ("edit", 1)
    assert entry.filters["edit_reason"] == "typo in the domain"
    assert typo in entry.filters["original"]
    assert "ada@example.com" in entry.filters["edited"]


async def test_the_api_pages_a_group_mutes_archives_restores_and_purges_it_with_a_typed_confirm(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    await park(url, "voucher", [confirmed() for _ in range(3)])
    headers = {**_auth(), "X-Operator": "bob"}
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        synced = (await client.post("/admin/dlq/sync", headers=headers)).json()
        [group] = (await client.get("/admin/dlq/groups", headers=headers)).json()["groups"]
        base = f"/admin/dlq/groups/{group['fingerprint']}"
        first = (await client.get(f"{base}/messages?limit=2", headers=headers)).json()
        rest = await client.get(f"{base}/messages?limit=2&after={first['next']}", headers=headers)
        one = await client.get(f"/admin/dlq/index/{first['messages'][0]['id']}", headers=headers)
        muted = await client.post(
            f"{base}/state", json={"state": "muted", "hours": 1}, headers=headers
        )
        visible = (await client.get("/admin/dlq/groups", headers=headers)).json()["groups"]
        hidden = (await client.get("/admin/dlq/groups?hidden=true", headers=headers)).json()
        archived = await client.post(f"{base}/state", json={"state": "archived"}, headers=headers)
        restored = await client.post(f"{base}/state", json={"state": "restore"}, headers=headers)
        wrong = await client.post(f"{base}/purge", json={"confirm": "0" * 16}, headers=headers)
        purged = await client.post(
            f"{base}/purge", json={"confirm": group["fingerprint"]}, headers=headers
        )
        unknown = await client.get("/admin/dlq/groups/0123456789abcdef", headers=headers)
        bad_cursor = await client.get(f"{base}/messages?after=yesterday", headers=headers)
        history = (await client.get("/admin/dlq/history", headers=headers)).json()
    assert synced["voucher.dlq"] == 3
    assert group["count"] == 3
    assert len(first["messages"]) == 2
    assert first["next"] is not None
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["messages"]) == 1
    assert rest.json()["next"] is None
    assert one.json()["message"]["headers"]["x-reason"] == "retries-exhausted"
    assert '"event_type": "BookingConfirmed"' in one.json()["message"]["body"]
    assert len(one.json()["parkings"]) == 1
    assert muted.json()["state"] == "muted"
    assert visible == []
    assert [g["state"] for g in hidden["groups"]] == ["muted"]
    assert archived.json()["state"] == "archived"
    assert restored.json()["state"] is None
    assert wrong.status_code == 422
    assert "type the group's fingerprint" in wrong.text
    assert purged.status_code == 200
    assert purged.json()[0]["purged"] == 3
    assert await queue_depth(url, "voucher.dlq") == 0
    assert unknown.status_code == 404
    assert bad_cursor.status_code == 422
    assert [e["operation"] for e in history] == ["purge", "restore", "archive", "mute"]
    assert {e["actor"] for e in history} == {"api:bob@127.0.0.1"}
