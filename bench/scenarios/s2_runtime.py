"""Scenario 2: messages/s through one consumer process with a no-op handler: the project's
runtime (with and without the idempotency record) against a raw aio-pika consume-and-ack
loop and a FastStream subscriber, each draining the same pre-filled quorum queue in turn."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from bench import BenchError
from bench.config import ROOT, Sizes
from bench.consumers import PREFETCH
from bench.harness import Stack, amqp_channel, publish_all, stack
from bench.payloads import confirmed_messages
from bench.plots import bar_plot
from bench.scenarios import Outcome
from bench.stats import Figure, Verdict
from shared.messaging.topology import consumer_topology

VARIANTS = ("raw", "faststream", "runtime", "runtime-record", "runtime-batched")
SERVICE = "voucher"  # any consumer's queue will do: the handler is a no-op


async def _drain(sut: Stack, variant: str, count: int) -> float:
    queue = consumer_topology(SERVICE).queue
    await publish_all(sut.amqp_url, confirmed_messages(count), routing_key=queue)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.consumers",
        variant,
        queue,
        str(count),
        cwd=ROOT,
        env={**sut.service_env()},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 120 + count / 200)
    except TimeoutError:
        process.kill()
        raise BenchError(f"{variant} did not drain {count} messages in time") from None
    if process.returncode != 0:
        raise BenchError(f"consumer variant {variant} exited with {process.returncode}")
    await _no_leftovers(sut, variant, queue)
    return float(json.loads(out.decode().strip().splitlines()[-1])["rate"])


async def _no_leftovers(sut: Stack, variant: str, queue: str) -> None:
    """Every variant stops after COUNT handled messages, so it cannot flatter itself by
    leaving some; but leftovers would end the next variant early. Now and then (seen with
    the bare aio-pika loop too: every message received once, each ack awaited) a few acks
    of the last moment before the connection closed do not count and their messages come
    back: cleared, and said. More than a prefetch left means a variant that did not drain."""
    ready = 0
    for _ in range(20):  # a quorum queue's counts lag its consumer's departure
        ready, consumers = await sut.queue_counts(queue)
        if not (ready or consumers):
            return
        await asyncio.sleep(0.1)
    async with amqp_channel(sut.amqp_url) as channel:
        await (await channel.get_queue(queue, ensure=False)).purge()
    if ready > PREFETCH:
        raise BenchError(f"{variant} left {ready} messages")
    print(f"    {variant}: {ready} message(s) back after their acks; cleared", flush=True)


async def run(sizes: Sizes) -> Outcome:
    runs: list[dict[str, Any]] = []
    async with stack("runtime") as sut:
        await sut.declare_topology()
        await _drain(sut, "raw", min(1000, sizes.runtime_messages))  # warm-up
        for repeat in range(sizes.repeats):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                rate = await _drain(sut, variant, sizes.runtime_messages)
                runs.append({"repeat": repeat, "variant": variant, "rate": rate})
    return _outcome(runs, sizes)


def _rates(runs: list[dict[str, Any]], variant: str) -> list[float]:
    return [r["rate"] for r in runs if r["variant"] == variant]


def _outcome(runs: list[dict[str, Any]], sizes: Sizes) -> Outcome:
    def ratio(a: str, b: str) -> Figure:
        xs, ys = _rates(runs, a), _rates(runs, b)
        return Figure(tuple(x / y for x, y in zip(xs, ys, strict=False)))

    figures = {v: Figure(tuple(_rates(runs, v))) for v in VARIANTS}
    context = {v: figures[v].median for v in VARIANTS}
    verdicts = [
        Verdict(
            2,
            "runtime/raw aio-pika, no idempotency record",
            ratio("runtime", "raw"),
            ">=",
            0.8,
            unit="×",
            context=context,
        ),
        Verdict(
            2,
            "runtime/FastStream, no idempotency record",
            ratio("runtime", "faststream"),
            ">=",
            1.2,
            unit="×",
        ),
        Verdict(
            2,
            "runtime with the idempotency record, one transaction per message",
            figures["runtime-record"],
            ">=",
            3000,
            unit=" msg/s",
            note=f"{ratio('runtime-record', 'raw').median:.2f}× raw; as email and notification run",
        ),
        Verdict(
            2,
            "runtime with the idempotency record, BATCH_SIZE = prefetch",
            figures["runtime-batched"],
            ">=",
            2000,
            unit=" msg/s",
            note=f"{ratio('runtime-batched', 'raw').median:.2f}× raw; as voucher and the "
            "booking service's report consumer run",
        ),
    ]
    plot = bar_plot(
        "s2_runtime.png",
        f"Scenario 2: one consumer process, no-op handler, prefetch 100 "
        f"({sizes.runtime_messages:,} messages per run)",
        {
            "raw aio-pika": figures["raw"],
            "FastStream": figures["faststream"],
            "runtime (no record)": figures["runtime"],
            "runtime + record": figures["runtime-record"],
            "runtime + record, batched": figures["runtime-batched"],
        },
        "messages/s",
    )
    return Outcome(verdicts, {"runs": runs}, [plot])
