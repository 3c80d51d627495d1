"""RabbitMQ definitions (users, vhost, least-privilege permissions, the whole topology),
built from :mod:`shared.messaging.topology` so they cannot drift from what the code declares.

Each service's permissions follow from what its code does, by the rules RabbitMQ checks:

* configure: the exchanges and queues it owns (declaring needs it, even when they exist);
* write: the exchanges it publishes to, the queues it binds, and the dead-letter exchange of
  every queue it declares;
* read: the queue it consumes, every queue it declares with a dead-letter exchange, and the
  exchanges it binds its queues to.

Passive declares need no permission, which is how a service checks for what it relies on.
The operator (``bookingctl``, the admin API) may read and purge the dead-letter queues and
replay messages through each consumer's retry exchange (which routes a work queue's name to
that work queue), and nothing else: no write on the default exchange, which reaches every
queue of the vhost. ``admin`` is the human administrator of the management UI.

A policy gives the dead-letter queues their delivery limit also where they were declared
by an older release without it (a queue's arguments cannot change; a policy can).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.messaging.topology import (
    CONSUMERS,
    DEAD_LETTER_DELIVERY_LIMIT,
    DEFAULT_EXCHANGE,
    PUBLISHES_TO,
    Topology,
    consumer_topology,
    owned_by,
    whole,
)

VHOST = "hotel"
SERVICES = ("booking", *(s for s in CONSUMERS if s != "booking"))
OPERATOR, ADMIN = "operator", "admin"
USERS = (*SERVICES, OPERATOR, ADMIN)
HASHING_ALGORITHM = "rabbit_password_hashing_sha256"


@dataclass(frozen=True)
class Permission:
    configure: str
    write: str
    read: str


def pattern(names: Iterable[str]) -> str:
    """An anchored regex matching exactly ``names`` (nothing when empty)."""
    unique = sorted(set(names))
    if not unique:
        return "^$"
    return "^(?:" + "|".join(re.escape(name) for name in unique) + ")$"


def service_permission(service: str) -> Permission:
    owned: Topology = owned_by(service)
    names = consumer_topology(service)
    dead_letter_targets = {
        str(q.arguments["x-dead-letter-exchange"]) or DEFAULT_EXCHANGE
        for q in owned.queues
        if "x-dead-letter-exchange" in q.arguments
    }
    with_dead_letters = {q.name for q in owned.queues if "x-dead-letter-exchange" in q.arguments}
    publishes = {PUBLISHES_TO[service], names.dead_letter_exchange, names.retry_exchange}
    return Permission(
        configure=pattern([e.name for e in owned.exchanges] + [q.name for q in owned.queues]),
        write=pattern(publishes | dead_letter_targets | {b.queue for b in owned.bindings}),
        read=pattern({names.queue} | with_dead_letters | {b.exchange for b in owned.bindings}),
    )


def permissions() -> dict[str, Permission]:
    dead_letter_queues = [names.dead_letter_queue for names in CONSUMERS.values()]
    replay_through = [names.retry_exchange for names in CONSUMERS.values()]
    return {
        **{service: service_permission(service) for service in SERVICES},
        OPERATOR: Permission("^$", pattern(replay_through), pattern(dead_letter_queues)),
        ADMIN: Permission(".*", ".*", ".*"),
    }


def policies(vhost: str = VHOST) -> list[dict[str, Any]]:
    """The dead-letter queues' delivery limit as a policy too: it reaches queues declared
    before the limit was one of their arguments (the lower of argument and policy wins)."""
    dead_letter_queues = [names.dead_letter_queue for names in CONSUMERS.values()]
    return [
        {
            "vhost": vhost,
            "name": "dead-letter-queues-delivery-limit",
            "pattern": pattern(dead_letter_queues),
            "apply-to": "queues",
            "definition": {"delivery-limit": DEAD_LETTER_DELIVERY_LIMIT},
            "priority": 0,
        }
    ]


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_matches(password: str, encoded: str) -> bool:
    salt = base64.b64decode(encoded)[:4]
    return hmac.compare_digest(password_hash(password, salt), encoded)


def password_variable(user: str) -> str:
    return f"RABBITMQ_{user.upper()}_PASSWORD"


def build(passwords: Mapping[str, str] | None, vhost: str = VHOST) -> dict[str, Any]:
    """The definitions document; ``passwords`` maps every user of USERS to its password.
    Without passwords (None): the reference document, whose users have no password hash, so
    no one can log in with it (RabbitMQ refuses a password for a user without one)."""
    missing = [user for user in USERS if passwords is not None and not passwords.get(user)]
    if missing:
        raise ValueError(f"no password for {', '.join(missing)}")
    topology = whole()
    return {
        "users": [
            {
                "name": user,
                "password_hash": password_hash(passwords[user]) if passwords else "",
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": ["administrator"] if user == ADMIN else [],
            }
            for user in USERS
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": user, "vhost": vhost, **vars(permission)}
            for user, permission in permissions().items()
        ],
        "policies": policies(vhost),
        "exchanges": [
            {
                "name": e.name,
                "vhost": vhost,
                "type": e.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for e in topology.exchanges
        ],
        "queues": [
            {
                "name": q.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": q.arguments,
            }
            for q in topology.queues
        ],
        "bindings": [
            {
                "source": b.exchange,
                "vhost": vhost,
                "destination": b.queue,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in topology.bindings
        ],
    }
