"""Errors of the dead-letter operations (bookingctl and the admin API). Library and
shared-runtime errors are translated here.

The tree::

    DlqError
    ├── UnknownQueue          no consumer has a dead-letter queue of that name
    ├── UnknownGroup          no failure group (or indexed message) of that name
    ├── InvalidRequest        a filter or option that cannot work (bad duration, no selection)
    ├── QueueMissing          the queue was never declared (its service never started)
    ├── BrokerUnreachable     RabbitMQ cannot be reached, or dropped the connection
    └── AuditUnavailable      the audit table cannot be written: nothing is done without it
"""

from __future__ import annotations


class DlqError(Exception):
    """Root of every error of the dead-letter operations."""


class UnknownQueue(DlqError):
    pass


class UnknownGroup(DlqError):
    pass


class InvalidRequest(DlqError):
    pass


class QueueMissing(DlqError):
    pass


class BrokerUnreachable(DlqError):
    pass


class AuditUnavailable(DlqError):
    pass
