"""Scenario 10: the seed's profile (steps of 1000 / 500 / 1000 ms), ours against the seeds'
design. The same open-loop load, 500 bookings posted at 50/s, goes once to our system (the
three consumers with the simulated steps and prefetch 50, as in scenario 4) and once to the
seeds' (FastAPI + INSERT + three Celery ``.delay()``, one Celery worker that sleeps each
step), alternately. Drain time: from the first booking due to the last of its 1,500 steps
done, both read from PostgreSQL's clock (our consumers' done reports, Celery's
``celery_done`` rows). The ratio is Celery's drain time ÷ ours.

The Celery worker's pool and concurrency: ``BENCH_CELERY_POOL`` (gevent) and
``BENCH_CELERY_CONCURRENCY`` (150: the in-flight budget of our three consumers, prefetch 50
each); README "Celery baseline" says how the pool was chosen.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from math import inf
from typing import Any

import aiormq

from bench import BenchError, celery_seed
from bench.config import RAW, Sizes
from bench.e2e import DONE, db_now, last_done
from bench.harness import Stack, stack, wait_for, wait_http
from bench.openloop import generate
from bench.scenarios import Outcome
from bench.scenarios.s4_profile import PREFETCH, RATE, STEP_MS
from bench.stats import Figure, Verdict, drain_seconds, paired_ratio
from shared.messaging.topology import CONSUMER_SERVICES
from tests.support.processes import free_port

# The same in-flight budget as the Celery worker's pool, shared by our three consumers in
# proportion to their steps (60 / 30 / 60): each is sized by Little's law, rate x step, with
# the same headroom. At scenario 4's 50 each, the 1 s steps would need every slot at 50/s,
# so whatever a slot spends besides its step (its transaction, the ack, the broker's next
# delivery: ~8 ms) makes a queue, and the last bookings finish ~90 ms late.
BUDGET = PREFETCH * len(STEP_MS)
OUR_PREFETCH = {s: round(BUDGET * ms / sum(STEP_MS.values())) for s, ms in STEP_MS.items()}
POOL = os.environ.get("BENCH_CELERY_POOL", "gevent")
CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", str(BUDGET)))
# Without its worker events: with them, Celery 5.7's loop for green pools waits up to 0.1 s
# on the events connection after every message (loops.synloop, _quick_drain), ~10 tasks/s.
WORKER_FLAGS = ("--without-heartbeat", "--without-gossip", "--without-mingle")
TARGETS = ("ours", "celery")
WARM_UP = 10  # bookings
QUIET_AFTER = 2.0  # seconds: the last progress reports reach booking, the worker idles


Counted = Callable[[], Awaitable[tuple[int, float | None]]]


async def _drain(
    count: int,
    answers: list[tuple[float, float, int]],
    per_booking: int,
    counted: Counted,
    what: str,
) -> dict[str, Any]:
    """Wait until every accepted booking's steps are done (``counted()``: steps done, the
    last one's epoch), then the drain time (infinite if a booking was refused or never
    answered)."""
    refused = count - sum(1 for *_, status in answers if status in (200, 201))
    expected = count * per_booking

    async def finished() -> bool:
        return (await counted())[0] >= (count - refused) * per_booking

    try:
        await wait_for(finished, count / RATE + 120, what, interval=0.25)
    except BenchError as exc:
        print(f"    scenario 10: {exc}", flush=True)
    done, last = await counted()
    first_due = min((due for due, *_ in answers), default=0.0)  # none: all refused, inf
    seconds = drain_seconds(first_due, last, done, expected, refused)
    return {"drain_s": seconds, "done": done, "expected": expected, "refused": refused}


async def _ours(sut: Stack, url: str, count: int, offset: int) -> dict[str, Any]:
    since = await db_now(sut)
    answers = await generate(url, RATE, count, RAW / "s10_ours.json", offset)

    async def counted() -> tuple[int, float | None]:
        sut.check_alive()
        row = (await sut.sql(f"SELECT count(*) AS n, max(done) AS last FROM ({DONE}) d", since))[0]
        return int(row["n"]), None if row["last"] is None else float(row["last"])

    result = await _drain(count, answers, 1, counted, "our consumers to drain")
    first_due = min((due for due, *_ in answers), default=0.0)
    last = await last_done(sut, since)  # which consumer the drain waited for
    result["last_done_s"] = {s: None if t is None else t - first_due for s, t in last.items()}
    return result


async def _celery(base: Stack, url: str, count: int, offset: int) -> dict[str, Any]:
    await base.sql("TRUNCATE bare_bookings, celery_done")
    answers = await generate(url, RATE, count, RAW / "s10_celery.json", offset)

    async def counted() -> tuple[int, float | None]:
        base.check_alive()
        # Only this run's bookings: a task published before a failed .delay() of an
        # earlier run may still be done after the TRUNCATE.
        query = (
            "SELECT count(*) AS n, extract(epoch FROM max(done_at)) AS last FROM celery_done d"
            " JOIN bare_bookings b ON b.id = d.booking_id"
        )
        row = (await base.sql(query))[0]
        return int(row["n"]), None if row["last"] is None else float(row["last"])

    tasks = len(celery_seed.TASKS)
    return await _drain(count, answers, tasks, counted, "the Celery worker to drain")


async def _seeds(base: Stack) -> str:
    """The seeds' API (Celery's default publishing, no confirms) and one worker."""
    port = free_port()
    base.start("celery", ["-m", "bench.baseline_api"], base.service_env(port=port, mode="celery"))
    url = f"http://127.0.0.1:{port}"
    await wait_http(f"{url}/hotels", base)  # the API has created celery_done
    worker = ["-m", "celery", "-A", "bench.celery_seed", "worker", "-P", POOL]
    worker += ["-c", str(CONCURRENCY), "-l", "WARNING", *WORKER_FLAGS]
    base.start("celery-worker", worker, base.service_env())
    queue = celery_seed.app.conf.task_default_queue

    async def consuming() -> bool:
        base.check_alive()
        try:
            return (await base.queue_counts(queue))[1] >= 1
        except aiormq.exceptions.ChannelNotFoundEntity:  # the worker declares it
            return False
        except TimeoutError:  # a broker too busy to answer at once: asked again
            return False

    await wait_for(consuming, 120, "the Celery worker", interval=0.5)
    return url


async def run(sizes: Sizes) -> Outcome:
    count = sizes.drain_bookings
    runs: list[dict[str, Any]] = []
    async with stack("drain_ours") as sut, stack("drain_celery") as base:
        urls = {"ours": await sut.system(STEP_MS, OUR_PREFETCH), "celery": await _seeds(base)}
        for target, url in urls.items():  # warm-up: connections made (Celery's on first use)
            await generate(url, RATE, WARM_UP, RAW / f"s10_warm_up_{target}.json", -WARM_UP)
        await asyncio.sleep(max(STEP_MS.values()) / 1000 + QUIET_AFTER)
        for repeat in range(sizes.repeats):
            for target in TARGETS if repeat % 2 == 0 else TARGETS[::-1]:
                offset = (repeat * len(TARGETS) + TARGETS.index(target)) * count
                if target == "ours":
                    result = await _ours(sut, urls[target], count, offset)
                else:
                    result = await _celery(base, urls[target], count, offset)
                runs.append({"repeat": repeat, "target": target, **result})
                await asyncio.sleep(QUIET_AFTER)
    ours_runs = [r for r in runs if r["target"] == "ours"]
    ours = Figure(tuple(r["drain_s"] for r in ours_runs))
    celery = Figure(tuple(r["drain_s"] for r in runs if r["target"] == "celery"))
    name = f"{count} bookings at 50/s, seed's steps: Celery's drain time ÷ ours"
    note = (
        f"drain s: ours {ours.text()}, Celery {celery.text()} "
        f"({POOL} pool, concurrency {CONCURRENCY}); posting alone takes {count / RATE:.0f} s"
    )
    tails = {
        service: Figure(tuple(r["last_done_s"][service] or inf for r in ours_runs))
        for service in CONSUMER_SERVICES
    }
    note += "; our last step done after " + ", ".join(
        f"{service} {tail.median:.1f} s" for service, tail in tails.items()
    )
    refused = {t: sum(r["refused"] for r in runs if r["target"] == t) for t in TARGETS}
    if any(refused.values()):  # e.g. the broker timing out .delay(): an infinite drain
        note += "; bookings refused: " + ", ".join(f"{t} {n}" for t, n in refused.items())
    ratio = paired_ratio(runs, "celery", "ours", "drain_s")
    verdict = Verdict(10, name, ratio, ">=", 1.0, unit="×", note=note)
    return Outcome([verdict], {"runs": runs, "pool": POOL, "concurrency": CONCURRENCY})
