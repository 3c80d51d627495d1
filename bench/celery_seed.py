"""The seeds' design as a baseline: three Celery tasks (notification, email, voucher) that a
FastAPI endpoint enqueues with ``.delay()`` after its INSERT (bench/baseline_api.py, modes
``celery`` and ``celery-confirm``), on RabbitMQ in the benchmark stack's own vhost.

The worker (scenario 10): ``python -m celery -A bench.celery_seed worker -P POOL -c N``.
Each task sleeps the seed's step (``time.sleep``: a thread or a process waits, and under
``-P gevent`` Celery has monkey-patched it into a greenlet's sleep) and then records that it
is done: one row per (booking, task) in ``celery_done``, stamped by PostgreSQL's clock like
our consumers' done reports, so a drain is counted from the database and a task run twice
counts once. pg8000 is pure Python, so its sockets are the ones gevent patches.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pg8000.native
from celery import Celery

from shared import registry

STEP_SECONDS = {s.name: s.seed_latency_ms / 1000 for s in registry.CONSUMERS}
DONE_SCHEMA = """CREATE TABLE IF NOT EXISTS celery_done (
    booking_id uuid NOT NULL, task text NOT NULL,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (booking_id, task))"""
DB_CONNECTIONS = 10  # per worker process: enough for inserts that take a millisecond

app = Celery("seed", broker=os.environ.get("AMQP_URL"))
app.conf.update(
    task_ignore_result=True,  # the seeds keep no results; no backend is configured
    broker_connection_retry_on_startup=True,
)


def configure(amqp_url: str, confirm_publish: bool) -> None:
    """The API's side: the broker, and whether ``.delay()`` waits for the broker's confirm."""
    app.conf.broker_url = amqp_url
    app.conf.broker_transport_options = {"confirm_publish": True} if confirm_publish else {}


class _Connections:
    """A few pg8000 connections shared by the pool's threads or greenlets (one each at a
    time: a connection is not thread-safe). Made lazily, so a prefork child makes its own."""

    def __init__(self, size: int) -> None:
        self._idle: queue.LifoQueue[pg8000.native.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def run(self, sql: str, **params: Any) -> None:
        with self._slots:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                connection = _connect()
            try:
                connection.run(sql, **params)
            except Exception:
                connection.close()
                raise
            self._idle.put(connection)


def _connect() -> pg8000.native.Connection:
    url = urlsplit(os.environ["DATABASE_URL"])
    return pg8000.native.Connection(
        user=url.username or "postgres",
        password=url.password,
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        database=url.path.lstrip("/"),
    )


_db = _Connections(DB_CONNECTIONS)


def _work(task: str, booking: dict[str, Any]) -> None:
    time.sleep(STEP_SECONDS[task])
    _db.run(
        "INSERT INTO celery_done (booking_id, task) VALUES (CAST(:id AS uuid), :task)"
        " ON CONFLICT DO NOTHING",
        id=booking["id"],
        task=task,
    )


@app.task(name="notification")
def notification(booking: dict[str, Any]) -> None:
    _work("notification", booking)


@app.task(name="email")
def email(booking: dict[str, Any]) -> None:
    _work("email", booking)


@app.task(name="voucher")
def voucher(booking: dict[str, Any]) -> None:
    _work("voucher", booking)


TASKS = (notification, email, voucher)
