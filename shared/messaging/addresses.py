"""Several broker addresses in one AMQP_URL, and the order a process tries them in.

::

    amqp://booking:secret@rabbitmq:5672,rabbitmq-2:5672,rabbitmq-3:5672/hotel?heartbeat=10

The nodes of a RabbitMQ cluster share their users and virtual hosts, so one user, password,
vhost and set of options serve every node: the hosts are listed where one would be, comma
separated, as libpq and MongoDB write theirs. aio-pika connects to one URL; the rotation,
which node to try next when a connection fails or is lost, is ours (:class:`Rotation`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from shared.errors import ConfigurationError


class AddressError(ConfigurationError, ValueError):
    """An AMQP_URL whose host list cannot be read (an empty entry). A ValueError too, so a
    settings validator reports it as the setting's problem."""


def split(url: str) -> tuple[str, ...]:
    """One URL per host of ``url``, each with its user, password, vhost and options; a URL
    with one host (or no ``scheme://``) comes back as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return (url,)
    # The authority ends at the first of "/", "?" or "#"; a password holding one of them is
    # percent-encoded, as in any URL.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hosts = authority.rpartition("@")
    if "," not in hosts:
        return (url,)
    names = [host.strip() for host in hosts.split(",")]
    if not all(names):
        raise AddressError(
            "AMQP_URL lists an empty broker address: write the hosts as host:port,host:port"
        )
    return tuple(f"{scheme}://{userinfo}{at}{host}{tail}" for host in names)


class Rotation:
    """The order in which one process tries a list of brokers.

    An attempt tries every address once, starting one further along than the attempt
    before, or, once a connection opened, with the address after the one that last
    connected: a process's connections (even opened at once) go to different nodes, and a
    process that lost its node tries the next one first rather than waiting on the one that
    just went away. The first start is random, so processes spread over the nodes."""

    def __init__(self, addresses: Sequence[str], start: int | None = None) -> None:
        if not addresses:
            raise AddressError("no broker address")
        self.addresses = tuple(addresses)
        self._next = random.randrange(len(addresses)) if start is None else start
        self._lock = threading.Lock()  # one process's connections may open on two loops

    def attempt(self) -> tuple[str, ...]:
        """Every address, in the order to try them now."""
        with self._lock:
            first = self._next % len(self.addresses)
            self._next = first + 1
        return self.addresses[first:] + self.addresses[:first]

    def connected(self, address: str) -> None:
        """``address`` worked: the next attempt starts with the one after it."""
        with self._lock:
            self._next = self.addresses.index(address) + 1


_rotations: dict[str, Rotation] = {}
_rotations_lock = threading.Lock()


def rotation(url: str) -> Rotation:
    """The process's rotation over the hosts of ``url``: one per setting, shared by every
    connection made from it, so they spread over the nodes together."""
    with _rotations_lock:
        if url not in _rotations:
            _rotations[url] = Rotation(split(url))
        return _rotations[url]


def first(url: str) -> str:
    """The URL of the first host: for what needs one broker's name, not a connection (the
    user to publish as, the AsyncAPI server)."""
    return split(url)[0]
