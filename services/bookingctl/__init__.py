"""``bookingctl``: the operator's command line for dead-letter queues (``cli.py``, how it shows
things in ``render.py``, its settings in ``settings.py``). The operations themselves are the
library ``shared/deadletters/``, which the booking service's admin API uses too.
"""
