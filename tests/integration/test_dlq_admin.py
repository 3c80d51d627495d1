"""The admin API for dead-letter queues on the booking service: bearer token, disabled
without one, the same operations as the CLI, each replay and purge audited."""

from __future__ import annotations

from shared.messaging.topology import consumer_topology
from tests.support.amqp import queue_depth, take
from tests.support.dlq import message_ids, park
from tests.support.events import confirmed
from tests.support.infra import TestEnv
from tests.support.stack import booking_api, fetchval

TOKEN = "s3cret-admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_without_an_admin_token_the_admin_api_is_disabled_not_open(env: TestEnv) -> None:
    [parked] = await park(env.amqp_url(), "email", [confirmed()])
    async with booking_api(env) as (client, _):
        listed = await client.get("/admin/dlq", headers=AUTH)
        replayed = await client.post("/admin/dlq/email/replay", json={"all": True})
        bare = await client.get("/admin/dlq/history")
    for response in (listed, replayed, bare):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "admin API disabled: set ADMIN_TOKEN"
    assert await message_ids(env.amqp_url(), "email.dlq") == [parked]


async def test_the_admin_api_wants_the_token_then_lists_shows_replays_purges_and_audits(
    env: TestEnv,
) -> None:
    url = env.amqp_url()
    emails = await park(url, "email", [confirmed() for _ in range(3)])
    await park(url, "voucher", [confirmed() for _ in range(2)])
    async with booking_api(env, admin_token=TOKEN) as (client, _):
        refused = [
            await client.get("/admin/dlq"),
            await client.get("/admin/dlq", headers={"Authorization": "Bearer wrong"}),
            await client.get("/admin/dlq", headers={"Authorization": f"Basic {TOKEN}"}),
            await client.post("/admin/dlq/email/purge", json={"all": True}),
        ]
        listed = (await client.get("/admin/dlq", headers=AUTH)).json()
        shown = (await client.get("/admin/dlq/email/messages?limit=2", headers=AUTH)).json()
        dry = await client.post(
            "/admin/dlq/email.dlq/replay", json={"all": True, "dry_run": True}, headers=AUTH
        )
        replay = await client.post(
            "/admin/dlq/email/replay",
            json={"ids": [emails[0], emails[2]], "older_than": "0s"},
            headers={**AUTH, "X-Operator": "alice"},
        )
        purge = await client.post("/admin/dlq/voucher/purge", json={"all": True}, headers=AUTH)
        unknown = await client.get("/admin/dlq/parcel/messages", headers=AUTH)
        bad = await client.post(
            "/admin/dlq/email/replay", json={"all": True, "older_than": "soon"}, headers=AUTH
        )
        nothing = await client.post("/admin/dlq/email/replay", json={}, headers=AUTH)
        history = (await client.get("/admin/dlq/history", headers=AUTH)).json()
        docs = (await client.get("/openapi.json")).json()
    for response in refused:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert {q["service"]: q["messages"] for q in listed} == {
        "notification": 0,
        "email": 3,
        "voucher": 2,
        "booking": 0,
    }
    assert [m["message_id"] for m in shown] == emails[:2]
    assert dry.status_code == 200
    assert dry.json()["replayed"] == 3
    assert dry.json()["dry_run"] is True
    assert replay.status_code == 200
    assert (replay.json()["replayed"], replay.json()["skipped"]) == (2, 1)
    moved = await take(url, consumer_topology("email").queue, 2)
    assert sorted(str(m.message_id) for m in moved) == sorted([emails[0], emails[2]])
    assert moved[0].headers["x-replay-count"] == 1
    assert await message_ids(url, "email.dlq") == [emails[1]]
    assert purge.json()["purged"] == 2
    assert await queue_depth(url, "voucher.dlq") == 0
    assert unknown.status_code == 404
    assert "parcel" in unknown.json()["detail"]
    assert bad.status_code == 422
    assert "not a duration" in bad.json()["errors"][0]["msg"]
    assert nothing.status_code == 422
    assert "say which messages" in nothing.json()["errors"][0]["msg"]
    assert [(h["operation"], h["queue"], h["status"]) for h in history] == [
        ("purge", "voucher.dlq", "completed"),
        ("replay", "email.dlq", "completed"),
        ("replay", "email.dlq", "completed"),
    ]
    assert history[1]["actor"].startswith("api:alice@")
    assert history[1]["filters"] == {"ids": [emails[0], emails[2]], "older_than": "PT0S"}
    assert history[2]["dry_run"] is True
    assert await fetchval(env, "SELECT count(*) FROM ops.dlq_audit") == 3
    assert "/admin/dlq/{queue}/replay" in docs["paths"]
    assert "HTTPBearer" in docs["components"]["securitySchemes"]
