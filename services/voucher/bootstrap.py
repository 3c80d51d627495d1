"""Wiring for the voucher process: the one place its clients are built."""

from __future__ import annotations

from pathlib import Path

from services.voucher.handlers import issue_voucher, void_voucher
from services.voucher.settings import VoucherSettings
from shared.consumer_service import bootstrap_for
from shared.events import BookingCancelled, BookingConfirmed
from shared.messaging.handlers import Handler, route

SERVICE = "voucher"
MIGRATIONS = Path(__file__).parent / "migrations"


def make_handlers(settings: VoucherSettings) -> dict[str, Handler]:
    return dict(
        [
            route(BookingConfirmed, issue_voucher),
            route(BookingCancelled, void_voucher),
        ]
    )


bootstrap = bootstrap_for(SERVICE, make_handlers, MIGRATIONS)
