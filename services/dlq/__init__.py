"""Dead-letter operations: list, show, replay and purge the consumers' dead-letter queues.

One implementation (``operations.py``) serves both the ``bookingctl`` CLI (``cli.py``) and the
booking service's admin API (``services/booking/api/admin.py``); every replay and purge is
written to the audit table ``ops.dlq_audit`` (``audit.py``).
"""
