"""The ack batcher decides which basic.ack frames to write; a recording channel stands in for
aiormq's (the real broker's side is in tests/integration/test_consumer_runtime.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiormq.abc import AbstractChannel

from shared.messaging import acks as acks_module
from shared.messaging.acks import AckBatcher


class RecordingChannel:
    def __init__(self, fail: bool = False) -> None:
        self.frames: list[tuple[int, bool]] = []
        self.fail = fail
        self.closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        if self.fail:
            raise ConnectionError("channel closed")
        self.frames.append((delivery_tag, multiple))


def batcher(channel: RecordingChannel, delivered: range, gather: int = 25) -> AckBatcher:
    acks = AckBatcher(cast(AbstractChannel, cast(Any, channel)), "q", gather)
    for tag in delivered:
        acks.delivered(tag)
    return acks


async def test_the_oldest_acks_of_one_turn_go_out_as_one_multiple_frame() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 6))
    for tag in (1, 2, 3):
        acks.ack(tag)
    await acks.flush()
    assert channel.frames == [(3, True)]


async def test_an_ack_behind_a_message_still_in_hand_goes_alone() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(5, 10))
    for tag in (5, 6, 8):
        acks.ack(tag)
    await acks.flush()
    # 7 is still being handled: a multiple ack of 8 would settle it too
    assert channel.frames == [(6, True), (8, False)]


async def test_a_single_oldest_ack_is_not_sent_as_multiple() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 4))
    acks.ack(1)
    acks.ack(3)
    await acks.flush()
    assert channel.frames == [(1, False), (3, False)]


async def test_a_delivery_settled_elsewhere_no_longer_blocks_a_multiple_ack() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 5))
    acks.forget(2)  # parked: its own ack was written
    for tag in (1, 3, 4):
        acks.ack(tag)
    await acks.flush()
    assert channel.frames == [(4, True)]


async def test_acks_leave_by_the_end_of_the_turn_when_nothing_else_is_in_hand() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 3))
    acks.ack(2)
    acks.ack(1)
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(2, True)]


async def test_an_ack_soon_after_another_frame_waits_at_most_the_ack_delay_for_company(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(acks_module, "ACK_DELAY", 0.05)  # long enough for a busy machine
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 5))
    acks.ack(1)  # the first frame in a while: nothing to wait for
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(1, False)]
    acks.ack(3)
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(1, False)]  # a frame just left: 3 waits a moment for others
    acks.ack(2)
    await asyncio.sleep(0.2)
    assert channel.frames == [(1, False), (3, True)]
    acks.ack(4)  # the last in hand: nothing to wait for
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(1, False), (3, True), (4, False)]


async def test_an_ack_after_a_quiet_spell_leaves_at_once_though_others_are_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow steps at a full prefetch window: each ack frees the slot the next message waits
    # for at the broker, and waiting for company that comes seconds later costs every message.
    monkeypatch.setattr(acks_module, "ACK_DELAY", 0.05)
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 51))
    acks.ack(7)
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(7, False)]
    await asyncio.sleep(0.1)  # longer than the delay: quiet again
    acks.ack(9)
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(7, False), (9, False)]


async def test_acks_leave_at_once_when_enough_are_gathered() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 6), gather=2)
    acks.ack(1)
    acks.ack(3)
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.frames == [(1, False), (3, False)]


async def test_a_tag_is_never_acked_twice() -> None:
    channel = RecordingChannel()
    acks = batcher(channel, range(1, 3))
    acks.ack(1)
    await acks.flush()
    acks.ack(1)  # a second ack of a settled tag would close the channel
    await acks.flush()
    assert channel.frames == [(1, False)]


async def test_a_closed_channel_is_logged_not_raised(caplog: Any) -> None:
    acks = batcher(RecordingChannel(fail=True), range(1, 3))
    acks.ack(1)
    await acks.flush()
    assert "could not ack up to 1" in caplog.text
