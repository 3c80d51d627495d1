"""Dead-letter operations, a library: list, show, replay and purge the consumers' dead-letter
queues. One implementation (``operations.py``) serves both the ``bookingctl`` CLI
(``services/bookingctl/``) and the booking service's admin API
(``services/booking/api/admin.py``); neither imports the other. Every replay and purge is
written to the audit table ``ops.dlq_audit`` (``audit.py``, its SQL in ``migrations/``).

``model.py`` holds what they show and take, ``sweep.py`` the streaming pass behind replay and
purge, ``broker.py`` how a queue is read without losing what is not taken, ``errors.py`` the
error tree.
"""
