"""Benchmarks: every figure is a ratio against a baseline started in the same run.

``make bench`` (or ``python -m bench``) runs the scenarios in ``bench/scenarios`` against the
real services as OS processes, each scenario in a PostgreSQL database and RabbitMQ vhost of
its own, and writes ``bench/results/``: raw JSON (``raw/``, not committed), ``summary.json``,
``summary.md`` and PNG plots.

Error tree::

    BenchError            a scenario could not run (a process died, a wait timed out)
"""


class BenchError(Exception):
    """A scenario could not run: a process died, or a wait ran out of time."""
