"""How many feed streams may be open: per client address and in total.

An SSE stream holds a task, a socket and a subscription for as long as the client likes, so
without a cap one client (or a crowd) can hold the process's memory and file descriptors.
Over the per-client cap the answer is 429, over the total 503, both with ``Retry-After``.

The client address is the TCP peer the server sees. Behind a reverse proxy that is the proxy
for everyone, so set the per-client cap as high as the total there (or cap at the proxy);
``X-Forwarded-For`` is not trusted, since any client can write it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

Refusal = Literal["client", "total"]


class StreamSlots:
    def __init__(self, *, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._open.total()

    def take(self, client: str) -> Callable[[], None] | Refusal:
        """A slot for ``client`` (the callable gives it back; calling it twice is
        harmless), or which cap refused it."""
        if self.open >= self.total:
            return "total"
        if self._open[client] >= self.per_client:
            return "client"
        self._open[client] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[client] -= 1
                if not self._open[client]:
                    del self._open[client]

        return release
