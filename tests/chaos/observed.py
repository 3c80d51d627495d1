"""What the invariants and the drain need to see of a running system, whatever runs it: the
chaos suite's processes (tests/chaos/system.py) or the composed containers
(tests/compose/system.py). Each gives its database, its broker, the mail received, each
service's log and whether it runs, and the broker's own queue figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tests.chaos.infra import QueueStats


class ObservedService(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def alive(self) -> bool: ...

    @property
    def log(self) -> Path: ...


class ObservedEnv(Protocol):
    @property
    def database_url(self) -> str: ...


class ReceivedMail(Protocol):
    def __getitem__(self, name: str, /) -> object: ...


class Mailbox(Protocol):
    @property
    def messages(self) -> Sequence[ReceivedMail]: ...


class ObservedSystem(Protocol):
    @property
    def env(self) -> ObservedEnv: ...

    @property
    def amqp_url(self) -> str: ...

    @property
    def smtp(self) -> Mailbox: ...

    @property
    def services(self) -> Mapping[str, ObservedService]: ...

    async def queue_stats(self) -> dict[str, QueueStats]: ...
