"""Errors raised by the shared runtime. Library errors are translated here, at the boundary.

The tree::

    SharedError
    ├── ConfigurationError        a setting that cannot work
    ├── OpsServerStopped          a process's health/metrics server stopped by itself
    ├── DatabaseUnavailable       PostgreSQL cannot be reached (or timed out)
    │   └── PoolBusy              every connection of the process's pool is in use
    ├── MessagingError
    │   ├── BrokerUnavailable     no connection to RabbitMQ, or it dropped
    │   ├── PublishTimeout        the broker did not confirm within the timeout
    │   └── PublishRejected       the broker nacked or returned the message
    │       └── MessageUnencodable  the message cannot be put into AMQP frames at all
    ├── InvalidMessage            a message that can never be handled: dead-letter it
    │   ├── MessageTooLarge       its body is over the runtime's size limit
    │   └── WrongSender           published by a broker user that may not send it
    ├── UnhandledEventType        a well-formed event this consumer does not handle: ack and log
    └── HandlerError              raised by handlers to steer the runtime; ``code``, when
        │                         given, is the public failure code of its progress report
        ├── TransientError        worth retrying with backoff
        └── PermanentError        retrying cannot help: dead-letter it
"""

from __future__ import annotations


class SharedError(Exception):
    """Root of every error the shared runtime raises."""


class ConfigurationError(SharedError):
    pass


class OpsServerStopped(SharedError):
    pass


class DatabaseUnavailable(SharedError):
    pass


class PoolBusy(DatabaseUnavailable):
    pass


class MessagingError(SharedError):
    pass


class BrokerUnavailable(MessagingError):
    pass


class PublishTimeout(MessagingError):
    pass


class PublishRejected(MessagingError):
    pass


class MessageUnencodable(PublishRejected):
    pass


class InvalidMessage(SharedError):
    pass


class MessageTooLarge(InvalidMessage):
    pass


class WrongSender(InvalidMessage):
    pass


class UnhandledEventType(SharedError):
    pass


class HandlerError(SharedError):
    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        # What the booking API shows for this failure instead of its text (which stays in
        # the logs and the dead-letter headers); None: derived from the type and the step,
        # see shared/messaging/progress.py.
        self.code = code


class TransientError(HandlerError):
    pass


class PermanentError(HandlerError):
    pass
