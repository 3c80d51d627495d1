"""deploy/compose.yaml for real: built and started on a real Docker engine by the README's own
commands (stand-in images where the official ones cannot be pulled: tests/compose/standins),
then booked through, loaded, broken, scaled, and probed for its privileges.

``make test`` runs it reduced: build, up, one booking, a short load with one email replica
killed, the privileges. ``make test-compose`` (COMPOSE_SIZE=full) runs every test in full.
The tests share one composed system and run in this order; each leaves it running.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections import Counter

import httpx
import pytest
from pypdf import PdfReader

from shared import priority, registry
from tests.chaos.invariants import check
from tests.compose.checks import (
    allowed,
    bookingctl,
    email_shares,
    forbidden,
    fulfilment,
    guest,
    guest_booking,
    host_config,
    identity,
    mails,
    recipients,
    wait_for,
)
from tests.compose.commands import readme_command, scales
from tests.compose.system import APP_SERVICES, ComposedSystem
from tests.integration.test_rabbitmq_permissions import refused
from tests.support.load import LoadDriver
from tests.support.size import Size

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]
INFRASTRUCTURE = {"postgres": 1, "rabbitmq": 1, "mailpit": 1}


def replicas(command: list[str]) -> dict[str, int]:
    """Every service's replicas once ``command`` (an `up --scale ...`) has run."""
    return {**INFRASTRUCTURE, **dict.fromkeys(APP_SERVICES, 1), **scales(command)}


async def test_the_readme_command_starts_every_service_healthy_with_its_replicas(
    composed: ComposedSystem,
) -> None:
    command = readme_command("up --build")
    assert scales(command) == {"email": 3, "voucher": 2}
    await composed.wait_healthy(replicas(command), timeout=60)
    # ...each at its first start: an entrypoint or service that died and was restarted by
    # its restart policy would look healthy by now.
    for container in await composed.containers():
        out = await composed.run("docker", "inspect", "--format", "{{.RestartCount}}", container.id)
        assert out.strip() == "0", f"{container.name} was restarted"
    # Healthy means subscribed: the broker counts every replica on its queue.
    await wait_for(lambda: _consumers_are(composed, "email", 3), what="3 email consumers")
    await wait_for(lambda: _consumers_are(composed, "voucher", 2), what="2 voucher consumers")


async def _consumers_are(system: ComposedSystem, service: str, count: int) -> bool:
    return await system.consumers(service) == count


async def test_a_booking_is_mailed_with_its_voucher_pdf_and_every_step_is_done(
    composed: ComposedSystem,
) -> None:
    guest_email = guest("single", 0)
    async with httpx.AsyncClient(base_url=composed.base_url, timeout=10) as client:
        answer = await client.post("/bookings", json=guest_booking("single")(0))
        assert answer.status_code == 201, answer.text
        booking_id = answer.json()["id"]

        async def done() -> bool:
            return set((await fulfilment(client, booking_id)).values()) == {"done"}

        await wait_for(done, what="every fulfilment step done", timeout=60)
    [mail] = [m for m in await mails(composed) if guest_email in recipients([m])]
    async with httpx.AsyncClient(base_url=composed.mailpit_url, timeout=10) as mailpit:
        message = (await mailpit.get(f"/api/v1/message/{mail['ID']}")).json()
        assert booking_id in message["Text"]
        [pdf] = message["Attachments"]
        assert pdf["ContentType"] == "application/pdf"
        part = await mailpit.get(f"/api/v1/message/{mail['ID']}/part/{pdf['PartID']}")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(part.content)).pages)
    voucher = re.search(r"V-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", message["Subject"])
    assert voucher is not None
    assert voucher.group() in text
    assert booking_id in text


async def test_the_broker_users_are_refused_outside_their_permissions(
    composed: ComposedSystem,
) -> None:
    outcomes = {
        f"{user} {what}": await refused(composed.user_url(user), operation)
        for user, what, operation in [*forbidden(), *allowed()]
    }
    assert outcomes == {
        **{f"{user} {what}": True for user, what, _ in forbidden()},
        **{f"{user} {what}": False for user, what, _ in allowed()},
    }


async def test_the_app_containers_run_read_only_as_non_root_without_capabilities(
    composed: ComposedSystem,
) -> None:
    app = [c for c in await composed.containers() if c.service in APP_SERVICES and c.running]
    assert len(app) == sum(replicas(readme_command("up --build"))[s] for s in APP_SERVICES)
    for container in app:
        config = await host_config(composed, container.id)
        assert config["ReadonlyRootfs"] is True, container.name
        assert config["CapDrop"] == ["ALL"], container.name
        assert "no-new-privileges:true" in config["SecurityOpt"], container.name
        # The consumers yield the CPU to the booking API (shared/priority.py); 0: docker's 1,024.
        shares = priority.CONTAINER_CPU_SHARES if container.service in registry.NAMES else 0
        assert config["CpuShares"] == shares, container.name
        # ...and as the process inside finds it:
        seen = await identity(composed, container.id)
        assert seen["uid"] != 0, (container.name, seen)
        assert seen["gid"] != 0, (container.name, seen)
        assert seen["capabilities"] == "0000000000000000", (container.name, seen)
        assert seen["no_new_privs"] == "1", (container.name, seen)
        assert not seen["root_writable"], (container.name, seen)
        assert seen["tmp_writable"], (container.name, seen)


@pytest.mark.usefixtures("full_only")
async def test_a_few_hundred_bookings_are_shared_by_the_email_replicas_one_email_per_guest(
    composed: ComposedSystem,
) -> None:
    count, tag = 300, "spread"
    started = time.monotonic()
    driver = LoadDriver(
        composed.base_url, concurrency=8, key_prefix=tag, booking=guest_booking(tag)
    )
    record = await driver.run(count)
    assert len(record.accepted) == count, record.statuses
    figures = await check(composed, record, scenario="compose: spread", faults=0, started=started)
    print("\n" + figures.table())
    assert not figures.violations
    assert figures.lost == 0
    got = Counter(r for r in recipients(await mails(composed)) if r.startswith(f"{tag}-"))
    assert got == Counter({guest(tag, i): 1 for i in range(count)})
    shares = await email_shares(composed, tag)
    print(f"emails sent per email replica: {dict(shares)}")
    email_hosts = {c.id for c in await composed.running("email")}
    assert set(shares) == email_hosts, shares
    assert min(shares.values()) >= count // 10, shares  # each took a real share


@pytest.mark.usefixtures("full_only")
async def test_bookingctl_with_the_readme_amqp_url_replays_a_dead_letter(
    composed: ComposedSystem,
) -> None:
    await composed.compose("stop", "mailpit")
    async with httpx.AsyncClient(base_url=composed.base_url, timeout=10) as client:
        try:
            answer = await client.post("/bookings", json=guest_booking("replayed")(0))
            booking_id = answer.json()["id"]

            async def email_failed() -> bool:
                return (await fulfilment(client, booking_id))["email"] == "failed"

            await wait_for(email_failed, what="the email dead-lettered", timeout=180)
        finally:
            await composed.compose("start", "mailpit")
        await composed.wait_healthy({"mailpit": 1})
        out = await composed.run(*bookingctl(composed), "dlq", "replay", "email", "--all")
        assert "replayed 1, skipped 0, failed 0" in out, out

        async def email_done() -> bool:
            return (await fulfilment(client, booking_id))["email"] == "done"

        await wait_for(email_done, what="the replayed email sent", timeout=60)
    assert recipients(await mails(composed)).count(guest("replayed", 0)) == 1


async def test_nothing_is_lost_when_an_email_replica_is_killed_under_load(
    composed: ComposedSystem, size: Size
) -> None:
    """Reduced: one email replica killed. Full: then RabbitMQ restarted, under the same load."""
    count, tag = size.pick(60, 300), "faults"
    driver = LoadDriver(
        composed.base_url, concurrency=8, key_prefix=tag, booking=guest_booking(tag)
    )
    started = time.monotonic()
    load = asyncio.create_task(driver.run(count, rate=size.pick(15.0, 20.0)))
    faults = 0
    try:
        await wait_for(lambda: _accepted(driver, count // 3), what="a third booked")
        victim = (await composed.running("email"))[-1]
        await composed.run("docker", "kill", victim.id)
        faults += 1
        if size.full:
            await wait_for(lambda: _accepted(driver, 2 * count // 3), what="two thirds booked")
            await composed.compose("restart", "rabbitmq")
            faults += 1
            # Started is not ready: the invariants' own broker links need it healthy again.
            await composed.wait_healthy({"rabbitmq": 1})
        record = await load
    finally:
        load.cancel()
    assert len(record.accepted) == count, record.statuses
    figures = await check(
        composed,
        record,
        scenario="compose: email replica killed" + (", rabbitmq restarted" if size.full else ""),
        faults=faults,
        started=started,
        duplicates_allowed=True,  # the replica may die between sending and recording
        drain_timeout=240,
    )
    print("\n" + figures.table())
    assert not figures.violations
    assert figures.lost == 0
    got = Counter(r for r in recipients(await mails(composed)) if r.startswith(f"{tag}-"))
    assert set(got) == {guest(tag, i) for i in range(count)}


async def _accepted(driver: LoadDriver, at_least: int) -> bool:
    return len(driver.record.accepted) >= at_least


@pytest.mark.usefixtures("full_only")
async def test_a_running_system_scales_email_to_five_and_back_down(
    composed: ComposedSystem,
) -> None:
    before = replicas(readme_command("up --build"))
    command = readme_command("up -d --no-recreate --scale email=5")
    await composed.run(*command)
    # Only email changes: a scaled service the command left out would drop to one replica.
    await composed.wait_healthy({**before, "email": 5})
    await wait_for(lambda: _consumers_are(composed, "email", 5), what="5 email consumers")
    await composed.run(*["email=2" if word == "email=5" else word for word in command])
    await composed.wait_healthy({**before, "email": 2})
    await wait_for(lambda: _consumers_are(composed, "email", 2), what="2 email consumers")
    async with httpx.AsyncClient(base_url=composed.base_url, timeout=10) as client:
        answer = await client.post("/bookings", json=guest_booking("scaled")(0))
        booking_id = answer.json()["id"]

        async def done() -> bool:
            return set((await fulfilment(client, booking_id)).values()) == {"done"}

        await wait_for(done, what="a booking fulfilled after scaling down", timeout=60)
