"""Delivery of a notification to its HTTP targets: every webhook URL and the ntfy server.

Each target is tried once per attempt, side by side. A success is recorded at once in
``notification.deliveries``, in a transaction of its own (the handler's transaction rolls
back when another target fails), so a retry skips the targets already served. A target that
was served but could not be recorded is served again on the retry: delivery is at least
once, and receivers deduplicate on ``X-Event-Id``.

Errors are translated here: 5xx, 408, 429, timeouts and connection errors are transient;
other 4xx, redirects and unusable URLs are permanent. When one target fails permanently the
whole event is dead-lettered at once (retrying cannot complete it); after a fix, replaying
it from the dead-letter queue serves only the targets still missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx

from services.notification.notices import BookingEvent, Notice
from services.notification.signing import ntfy_topic, sign
from shared.db.pool import Connection, acquire
from shared.errors import HandlerError, PermanentError, TransientError

log = logging.getLogger(__name__)

Channel = Literal["webhook", "ntfy"]
SNIPPET_BYTES = 200


@dataclass(frozen=True)
class Target:
    channel: Channel
    # The webhook URL, or the ntfy server's base URL (the topic depends on the booking).
    url: str

    @property
    def label(self) -> str:
        """For logs and dead-letter headers: no query string or credentials, which may be
        secrets, and never the ntfy topic."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{self.channel} {parts.scheme}://{host}{port}{parts.path}"


def failure_for(status: int, label: str, detail: str = "") -> HandlerError | None:
    """None for a 2xx answer, else the error that says whether retrying can help."""
    if 200 <= status < 300:
        return None
    message = f"{label} answered {status}" + (f": {detail}" if detail else "")
    if status >= 500 or status in (408, 429):
        return TransientError(message)
    if 300 <= status < 400:
        return PermanentError(f"{message} (redirects are not followed; use the final URL)")
    return PermanentError(message)


class Deliverer:
    def __init__(
        self,
        client: httpx.AsyncClient,
        records: asyncpg.Pool,
        *,
        secret: str,
        webhook_urls: Sequence[str] = (),
        ntfy_url: str | None = None,
        timeout: float = 5.0,
        acquire_timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._records = records
        self._secret = secret
        self._timeout = timeout
        self._acquire_timeout = acquire_timeout
        self.targets = [Target("webhook", url) for url in webhook_urls]
        if ntfy_url:
            self.targets.append(Target("ntfy", ntfy_url))

    async def deliver(self, event: BookingEvent, notice: Notice, tx: Connection) -> None:
        """Serve every target not served yet; raise TransientError or PermanentError for
        those that fail (PermanentError when any failure is permanent)."""
        if not self.targets:
            return
        served = {
            (row["channel"], row["target"])
            for row in await tx.fetch(
                "SELECT channel, target FROM notification.deliveries WHERE event_id = $1",
                event.event_id,
            )
        }
        pending = [t for t in self.targets if (t.channel, t.url) not in served]
        results = await asyncio.gather(
            *(self._serve(target, event, notice) for target in pending), return_exceptions=True
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise _summarise(failures, len(pending))

    async def _serve(self, target: Target, event: BookingEvent, notice: Notice) -> None:
        if target.channel == "webhook":
            request = self._webhook_request(target.url, event)
        else:
            request = self._ntfy_request(target.url, event, notice)
        status = await self._send(target, request)
        await self._record(target, event.event_id, event.booking_id, status)
        log.info("%s %s delivered to %s", event.event_type, event.event_id, target.label)

    def _webhook_request(self, url: str, event: BookingEvent) -> httpx.Request:
        body = event.to_json()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": sign(body, self._secret),
            "X-Event-Id": str(event.event_id),
            "X-Event-Type": event.event_type,
        }
        return self._client.build_request("POST", url, content=body, headers=headers)

    def _ntfy_request(self, base_url: str, event: BookingEvent, notice: Notice) -> httpx.Request:
        url = f"{base_url}/{ntfy_topic(event.booking_id, self._secret)}"
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Title": notice.title,
            "Tags": ",".join(notice.tags),
        }
        return self._client.build_request(
            "POST", url, content=notice.message.encode(), headers=headers
        )

    async def _send(self, target: Target, request: httpx.Request) -> int:
        """The answer's status, or the translated error. The time limit covers the whole
        exchange (httpx's own timeouts apply to each read or write)."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.send(request, stream=True)
                try:
                    detail = "" if response.is_success else await _snippet(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TransientError(f"{target.label}: no answer within {self._timeout}s") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentError(f"{target.label}: unusable URL: {exc}") from exc
        except httpx.HTTPError as exc:  # connection refused or reset, DNS, protocol errors
            raise TransientError(f"{target.label}: {type(exc).__name__}: {exc}") from exc
        failure = failure_for(response.status_code, target.label, detail)
        if failure is not None:
            raise failure
        return response.status_code

    async def _record(self, target: Target, event_id: UUID, booking_id: UUID, status: int) -> None:
        # Autocommit: committed now, whatever happens to the handler's transaction.
        async with acquire(self._records, self._acquire_timeout) as conn:
            await conn.execute(
                "INSERT INTO notification.deliveries "
                "(event_id, booking_id, channel, target, status_code) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                event_id,
                booking_id,
                target.channel,
                target.url,
                status,
            )


async def _snippet(response: httpx.Response) -> str:
    """The start of an error answer's body, for the dead-letter headers."""
    data = b""
    try:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= SNIPPET_BYTES:
                break
    except httpx.HTTPError:  # a broken body must not hide the status
        pass
    return " ".join(data[:SNIPPET_BYTES].decode(errors="replace").split())


def _summarise(failures: list[BaseException], attempted: int) -> BaseException:
    """One error for the runtime: permanent if any failure is, else the first unexpected
    one (retried like a transient one), else a TransientError naming them all."""
    for failure in failures:
        if not isinstance(failure, Exception):
            return failure  # cancellation and the like: pass it on untouched
    summary = f"{len(failures)} of {attempted} target(s) failed: " + "; ".join(
        str(failure) or type(failure).__name__ for failure in failures
    )
    if any(isinstance(failure, PermanentError) for failure in failures):
        return PermanentError(summary)
    unexpected = [f for f in failures if not isinstance(f, HandlerError)]
    if unexpected:
        return unexpected[0]
    return TransientError(summary)
