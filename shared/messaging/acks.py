"""Acks of one channel, coalesced into as few ``basic.ack`` frames as is safe.

The runtime settles each delivery the moment its handler's transaction commits; writing one
frame per message costs about as much CPU as the rest of a no-op delivery (a socket write
each, and on one host the broker's wake-up with it). So acks are gathered and sent
together::

    outstanding (delivered, unsettled):  5  6  7  8  9
    acked this turn:                     5  6     8
                                         └──┴─► basic.ack(6, multiple=True)
                                                basic.ack(8)   (7 is still in hand)

``multiple=True`` settles every unacked delivery up to the tag, so it is only used for the
oldest outstanding deliveries, all of them acked; the rest go one frame each. The acks
gathered leave at the end of the loop turn when nothing else is in hand or when ``gather``
of them are ready (a quarter of the prefetch: the broker's window never runs dry), else at
most ``ACK_DELAY`` later: one loop turn gathered about three acks at 10,000 messages/s, a
millisecond gathers dozens. Acks that come slower than that (the last frame left more than
``ACK_DELAY`` ago) leave at once, as Nagle's algorithm sends when nothing is outstanding:
waiting would gather nothing and only hold the message's prefetch slot, which a consumer
whose slots are all busy (slow steps at a full window) pays on every message (bench scenario
10 measured 1.6 ms an ack at 50 messages/s). A message never waits on a slower one, and a
shutdown loses none (:meth:`AckBatcher.flush` is awaited before the channel closes).

Deliveries settled another way (a nack, or a parked copy's ack) are :meth:`forgotten
<AckBatcher.forget>` after that settle was written, so a later multiple ack passes over them.

One sender task writes the frames of every turn, strictly in the order they were decided:
with one task per turn, a later turn's multiple ack could pass an earlier turn's singles
while both waited on the connection's full write queue, and the broker closes a channel
acked for a tag it no longer knows. The sender stops when the channel closes, since a write
waiting on a dead connection's queue is never woken.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque

from aiormq.abc import AbstractChannel

log = logging.getLogger(__name__)
# The longest an ack waits for others to share its frame.
ACK_DELAY = 0.001  # seconds


class AckBatcher:
    def __init__(self, channel: AbstractChannel, name: str = "", gather: int = 1) -> None:
        self._channel = channel
        self._name = name
        self._gather = max(1, gather)
        self._timer: asyncio.TimerHandle | None = None
        self._outstanding: set[int] = set()
        self._acked: set[int] = set()
        self._unsent: deque[tuple[int, bool]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._scheduled = False
        self._last_sent = -math.inf  # loop time of the last turn that wrote frames
        channel.closing.add_done_callback(self._on_channel_closed)

    def delivered(self, tag: int | None) -> None:
        if tag is not None:  # None: a no-ack delivery, nothing to settle
            self._outstanding.add(tag)

    def forget(self, tag: int | None) -> None:
        """The delivery was settled by its own frame (already written), or never will be."""
        self._outstanding.discard(tag)
        self._acked.discard(tag)

    def ack(self, tag: int | None) -> None:
        """Ack ``tag`` at the end of this loop turn."""
        if tag is None or tag not in self._outstanding:
            return  # settled already: acking again would close the channel
        self._acked.add(tag)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        if not self._acked:
            return
        if (
            len(self._acked) >= self._gather
            or len(self._acked) == len(self._outstanding)
            or asyncio.get_running_loop().time() - self._last_sent >= ACK_DELAY
        ):
            self._send_turn()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._send_turn)

    def _send_turn(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        frames = self._frames()
        if frames:
            self._last_sent = asyncio.get_running_loop().time()
        self._unsent.extend(frames)
        if self._unsent and self._sender is None:
            self._sender = asyncio.ensure_future(self._send())

    def _frames(self) -> list[tuple[int, bool]]:
        """The (tag, multiple) frames that ack everything in ``_acked``, and only that."""
        if not self._acked:
            return []
        ordered = sorted(self._outstanding)
        prefix = 0
        while prefix < len(ordered) and ordered[prefix] in self._acked:
            prefix += 1
        frames = [(ordered[prefix - 1], True)] if prefix > 1 else []
        singles = ordered[:prefix] if prefix == 1 else []
        singles += [tag for tag in ordered[prefix:] if tag in self._acked]
        frames += [(tag, False) for tag in singles]
        self._outstanding.difference_update(self._acked)
        self._acked.clear()
        return frames

    async def _send(self) -> None:
        # wait=False: queued for the connection's writer, in order, without waiting for it
        # to drain; a chain of drains would hold later turns' acks back.
        try:
            while self._unsent:
                tag, multiple = self._unsent[0]
                await self._channel.basic_ack(tag, multiple=multiple, wait=False)
                self._unsent.popleft()
        except Exception as exc:  # the channel is gone: the broker redelivers, the record absorbs
            last = self._unsent[-1][0] if self._unsent else "?"
            log.warning("%s: could not ack up to %s: %r", self._name, last, exc)
            self._unsent.clear()
        finally:
            self._sender = None

    def _on_channel_closed(self, _: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unsent:
            log.warning("%s: channel closed before acks up to %d", self._name, self._unsent[-1][0])
        self._unsent.clear()
        if self._sender is not None:
            # Cancelled before its first step, it would never reach its finally.
            self._sender.cancel()
            self._sender = None

    async def flush(self) -> None:
        """Send what was gathered and wait until every ack so far was written."""
        if self._scheduled or self._timer is not None:
            self._send_turn()
        if self._sender is not None:
            await asyncio.wait({self._sender})
