"""Where a delivery that failed goes next: a retry queue after a backoff, or the dead-letter
queue with the reason in its headers.

Either way the copy is published with a publisher confirm *before* the original is acked;
if the copy cannot be confirmed, the original is requeued instead. A message is never in
neither place; a crash in between leaves it in both, and the idempotency record absorbs
the duplicate. A copy that cannot even be encoded (which copy_message is there to prevent)
is left to the broker: the original is rejected, and the work queue's dead-letter exchange
(at-least-once) puts it in the dead-letter queue with the broker's ``x-death`` reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.errors import MessageUnencodable, MessagingError
from shared.messaging import retry
from shared.messaging.envelope import copy_message
from shared.messaging.publisher import ConfirmingPublisher
from shared.messaging.topology import ConsumerTopology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parking:
    service: str
    names: ConsumerTopology
    publisher: ConfirmingPublisher
    policy: retry.RetryPolicy
    # Pause before requeueing a message we could not park anywhere (broker trouble), so a
    # failing publisher does not turn into a hot redelivery loop.
    requeue_pause: float = 1.0

    async def retry(
        self,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        error: Exception,
        attempts: int,
        this_round: int,
    ) -> bool:
        """Into the retry queue of this round, returning after the backoff; True if parked."""
        delay = self.policy.delay(this_round)
        log.warning(
            "%s: attempt %d of %s failed (%r); retrying in %.2fs",
            self.names.queue,
            attempts,
            message.message_id,
            error,
            delay,
        )
        copy = copy_message(
            message, self._headers(headers, error, attempts, None), expiration=delay
        )
        return await self._park(
            message, copy, self.names.retry_exchange, self.names.retry_queue(this_round)
        )

    async def dead_letter(
        self,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        error: Exception,
        attempts: int,
        reason: str,
    ) -> bool:
        """Into this service's dead-letter queue, with why; True if parked."""
        log.error(
            "%s: dead-lettering %s (%s after %d attempt(s)): %r",
            self.names.queue,
            message.message_id,
            reason,
            attempts,
            error,
        )
        copy = copy_message(message, self._headers(headers, error, attempts, reason))
        return await self._park(message, copy, self.names.dead_letter_exchange, self.names.queue)

    def _headers(
        self, headers: dict[str, Any], error: Exception, attempts: int, reason: str | None
    ) -> dict[str, Any]:
        return retry.failure_headers(
            headers,
            error=error,
            attempts=attempts,
            service=self.service,
            queue=self.names.queue,
            reason=reason,
        )

    async def _park(
        self,
        original: AbstractIncomingMessage,
        copy: aio_pika.Message,
        exchange: str,
        routing_key: str,
    ) -> bool:
        try:
            await self.publisher.publish(copy, exchange=exchange, routing_key=routing_key)
        except MessageUnencodable as exc:
            # copy_message makes every header encodable, so this is a case nobody foresaw:
            # the broker's own dead-lettering takes the original as it is.
            log.error(
                "%s: cannot copy %s (%r); rejecting it", self.names.queue, original.message_id, exc
            )
            await original.reject(requeue=False)
            return False
        except MessagingError as exc:
            log.error(
                "%s: cannot park %s (%r); requeueing", self.names.queue, original.message_id, exc
            )
            await asyncio.sleep(self.requeue_pause)
            await original.nack(requeue=True)
            return False
        await original.ack()
        return True
