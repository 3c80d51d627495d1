"""Hostile input to the admin API (/admin/dlq), against the real app, PostgreSQL and RabbitMQ:
every value the audit table or the operation cannot take is a 422 naming the field before
anything is audited or moved, and no PostgreSQL error text ever reaches the client."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.support.dlq import message_ids, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, fetchval

TOKEN = "s3cret-admin-token-for-input-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NUL = "\x00"


def _where(response: Any) -> tuple[int, list[Any]]:
    problem = response.json()
    errors = problem.get("errors")
    return response.status_code, errors[0]["loc"] if errors else problem["detail"]


async def _audit_rows(env: TestEnv) -> int:
    try:
        return int(await fetchval(env, "SELECT count(*) FROM ops.dlq_audit"))
    except asyncpg.UndefinedTableError:  # migrated at first use: no table, no row
        return 0


async def test_a_nul_anywhere_in_an_admin_request_is_a_422_that_names_it(env: TestEnv) -> None:
    [parked] = await park(env.amqp_url(), "email", [confirmed()])
    replay = "/admin/dlq/email/replay"
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        answers = {
            "ids": await client.post(replay, json={"ids": [f"a{NUL}b"]}, headers=AUTH),
            "event_type": await client.post(
                replay, json={"all": True, "event_type": f"Booking{NUL}"}, headers=AUTH
            ),
            "reason": await client.post(
                replay, json={"all": True, "reason": f"x{NUL}"}, headers=AUTH
            ),
            "older_than": await client.post(
                replay, json={"all": True, "older_than": f"1{NUL}m"}, headers=AUTH
            ),
            "X-Operator": await client.post(
                replay, json={"all": True}, headers={**AUTH, "X-Operator": f"eve{NUL}"}
            ),
            "purge ids": await client.post(
                "/admin/dlq/email/purge", json={"ids": [NUL]}, headers=AUTH
            ),
            "queue": await client.get("/admin/dlq/em%00ail/messages", headers=AUTH),
            "history queue": await client.get(
                "/admin/dlq/history", params={"queue": f"email{NUL}"}, headers=AUTH
            ),
        }
    assert {name: _where(response) for name, response in answers.items()} == {
        "ids": (422, ["body", "ids", 0]),
        "event_type": (422, ["body", "event_type"]),
        "reason": (422, ["body", "reason"]),
        "older_than": (422, ["body", "older_than"]),
        "X-Operator": (422, ["header", "X-Operator"]),
        "purge ids": (422, ["body", "ids", 0]),
        "queue": (422, ["path", "queue"]),
        "history queue": (422, ["query", "queue"]),
    }
    for response in answers.values():
        assert "cannot be converted" not in response.text  # PostgreSQL's words
        assert "UTF8" not in response.text
    assert await _audit_rows(env) == 0
    assert await message_ids(env.amqp_url(), "email.dlq") == [parked]


async def test_numbers_and_durations_past_what_the_operation_takes_are_a_422(
    env: TestEnv,
) -> None:
    replay = "/admin/dlq/email/replay"
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        answers = {
            "limit": await client.post(replay, json={"all": True, "limit": 2**31}, headers=AUTH),
            "rate too slow": await client.post(
                replay, json={"all": True, "rate": 1e-9}, headers=AUTH
            ),
            "rate too fast": await client.post(
                replay, json={"all": True, "rate": 1e308}, headers=AUTH
            ),
            "rate infinite": await client.post(
                replay,
                content=b'{"all": true, "rate": Infinity}',
                headers={**AUTH, "content-type": "application/json"},
            ),
            "older_than": await client.post(
                replay, json={"all": True, "older_than": "999999999999w"}, headers=AUTH
            ),
            "nothing selected": await client.post(
                replay, json={"ids": [], "older_than": None}, headers=AUTH
            ),
            "purge all and ids": await client.post(
                "/admin/dlq/email/purge", json={"all": True, "ids": ["m-1"]}, headers=AUTH
            ),
            "history limit": await client.get(
                "/admin/dlq/history", params={"limit": 2**40}, headers=AUTH
            ),
        }
    assert {name: _where(response) for name, response in answers.items()} == {
        "limit": (422, ["body", "limit"]),
        "rate too slow": (422, ["body", "rate"]),
        "rate too fast": (422, ["body", "rate"]),
        "rate infinite": (422, ["body", "rate"]),
        "older_than": (422, ["body", "older_than"]),
        "nothing selected": (422, ["body"]),
        "purge all and ids": (422, ["body"]),
        "history limit": (422, ["query", "limit"]),
    }
    assert "at most 8 digits" in answers["older_than"].text
    assert await _audit_rows(env) == 0


async def test_a_database_failure_behind_the_audit_is_a_503_without_the_database_s_words(
    env: TestEnv,
) -> None:
    """An audit table of the wrong shape (here: created by hand without its columns) makes
    PostgreSQL fail every audit write; the operator is told, the details stay in the log."""
    conn = await asyncpg.connect(env.database_url)
    try:
        await conn.execute("CREATE SCHEMA ops; CREATE TABLE ops.dlq_audit (id bigserial)")
    finally:
        await conn.close()
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        replayed = await client.post("/admin/dlq/email/replay", json={"all": True}, headers=AUTH)
        history = await client.get("/admin/dlq/history", headers=AUTH)
    for response in (replayed, history):
        assert response.status_code == 503
        assert response.json() == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "the audit table cannot be reached, so nothing was done; try again shortly",
        }


async def test_booleans_are_json_booleans_and_no_refusal_speaks_of_command_line_flags(
    env: TestEnv,
) -> None:
    await park(env.amqp_url(), "email", [confirmed()])
    replay, purge = "/admin/dlq/email/replay", "/admin/dlq/email/purge"
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        answers = [
            await client.post(replay, json={"all": True, "dry_run": "yes"}, headers=AUTH),
            await client.post(replay, json={"all": "true"}, headers=AUTH),
            await client.post(replay, json={"all": 1}, headers=AUTH),
            await client.post(purge, json={"all": "yes"}, headers=AUTH),
            await client.post(replay, json={}, headers=AUTH),
            await client.post(purge, json={"all": True, "ids": ["x"]}, headers=AUTH),
        ]
        left = await client.get("/admin/dlq", headers=AUTH)
    assert [_where(answer) for answer in answers[:4]] == [
        (422, ["body", "dry_run"]),
        (422, ["body", "all"]),
        (422, ["body", "all"]),
        (422, ["body", "all"]),
    ]
    assert [answer.status_code for answer in answers[4:]] == [422, 422]
    for answer in answers:
        assert answer.headers["content-type"] == "application/problem+json"
        assert "--" not in answer.text, answer.text  # no --all, --id: this is not the CLI
    assert [queue["messages"] for queue in left.json() if queue["service"] == "email"] == [1]
    assert await _audit_rows(env) == 0
