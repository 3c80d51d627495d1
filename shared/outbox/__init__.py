"""The transactional outbox: events written in the same transaction as the change that
caused them, and the relay that publishes them to a fanout exchange.

    migrations/   the ``<svc>.outbox`` table, its one definition, applied to every service's
                  schema (shared/db/schemas.py)
    rows.py       writing rows: the one row type and INSERT every writer uses
    relay.py      OutboxRelay: the loop of passes (wake, sweep, back off, survive)
    claims.py     a pass's database steps: claim a batch, mark what was confirmed
    publish.py    a pass's broker step: publish the batch, a producer span per row
    backlog.py    OutboxProbe: the backlog gauges, read on scrape

Imports run one way: rows.py and claims.py do not import ``shared.messaging`` (the consumer
runtime imports rows.py to write its events); publish.py and relay.py do. This file imports
nothing, so importing the writer does not bring the relay along.

Errors: the package has no exceptions of its own. The relay meets the project's
(``MessagingError``, ``DatabaseUnavailable``: shared/errors.py) and asyncpg's, logs them
and tries again; the writers' errors are their transaction's.
"""
