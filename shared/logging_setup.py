"""Process-wide logging set-up, called once from each process's entry point."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(service: str, level: str = "INFO") -> None:
    replica = os.environ.get("REPLICA_NAME", service)
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)-7s {replica} %(name)s: %(message)s",
        force=True,
    )
    # aio-pika and aiormq log every reconnect attempt at length; our runtime says it briefly.
    logging.getLogger("aiormq").setLevel(logging.ERROR)
    logging.getLogger("aio_pika").setLevel(logging.ERROR)
