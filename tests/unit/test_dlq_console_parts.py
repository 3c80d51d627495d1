"""The parts of the dead-letter console that need no broker: fingerprints, the handler
frame, the session cookie and CSRF token, page cursors and the trend line."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from services.booking.console import session as sessions
from services.booking.console.pages import sparkline
from services.booking.settings import BookingSettings
from shared.deadletters.editing import check_edit
from shared.deadletters.errors import InvalidRequest
from shared.deadletters.fingerprint import fingerprint, normalise
from shared.deadletters.pages import MessageQuery, decode_cursor, encode_cursor
from shared.messaging.retry import handler_frame
from tests.support.events import confirmed

TOKEN = "a-long-enough-admin-token-for-the-console-0123456789"


def settings(token: str | None = TOKEN) -> BookingSettings:
    return BookingSettings(
        database_url="postgresql://x@127.0.0.1/x",
        amqp_url="amqp://guest:guest@127.0.0.1/",
        admin_token=SecretStr(token) if token is not None else None,
    )


def test_ids_addresses_and_numbers_are_normalised_out_of_a_reason() -> None:
    a = normalise("SMTP 127.0.0.1:1025 refused <ada@example.com>: 550 5.1.1 no such user")
    b = normalise("SMTP 10.0.0.7:25 refused <bob@example.org>:  551 5.1.2 no such user")
    assert a == b == "SMTP <ip>:<n> refused <<email>>: <n> <n>.<n> no such user"
    assert normalise("booking 3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b at deadbeef12") == (
        "booking <id> at <hex>"
    )


def test_failures_differing_only_in_ids_share_a_fingerprint_and_any_other_part_splits_it() -> None:
    parts = ("email", "BookingConfirmed", 1, "PermanentError", "services.email.handlers:send")
    one = fingerprint(*parts, "SMTP refused ada@example.com: 550")
    assert one == fingerprint(*parts, "SMTP refused bob@example.org: 551")
    assert len(one) == 16
    assert one != fingerprint("voucher", *parts[1:], "SMTP refused ada@example.com: 550")
    assert one != fingerprint(*parts[:4], "services.email.smtp:send", "SMTP refused a@b.c: 550")
    assert one != fingerprint(*parts, "SMTP timed out")


def test_the_handler_frame_is_the_deepest_frame_in_a_service_module() -> None:
    def inner() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as raised:
        inner()
    # No services.* frame here: the deepest frame of all, this test's helper.
    assert handler_frame(raised.value) == f"{__name__}:inner"
    assert handler_frame(ValueError("never raised")) == ""


def test_a_session_cookie_verifies_and_carries_its_operator_and_a_csrf_token() -> None:
    config = settings()
    found = sessions.verify(config, sessions.issue(config, "alice"))
    assert found is not None
    assert found.operator == "alice"
    assert found.expires > time.time()
    assert len(found.csrf) == 64


def test_a_tampered_or_foreign_or_expired_cookie_is_no_session() -> None:
    config = settings()
    cookie = sessions.issue(config, "alice")
    expires, nonce, name, signature = cookie.split(".")
    forged_name = f"{expires}.{nonce}.Ym9i.{signature}"  # "bob", same signature
    assert sessions.verify(config, forged_name) is None
    assert sessions.verify(settings(TOKEN + "x"), cookie) is None  # the token changed
    assert sessions.verify(config, "") is None
    assert sessions.verify(config, "a.b") is None
    assert sessions.verify(settings(None), cookie) is None  # admin disabled
    past = f"{int(time.time()) - 1}.{nonce}.{name}"
    key = sessions._key(config)
    assert key is not None
    assert sessions.verify(config, f"{past}.{sessions._sign(key, past)}") is None


def test_only_the_admin_token_matches() -> None:
    assert sessions.token_matches(settings(), TOKEN)
    assert not sessions.token_matches(settings(), TOKEN[:-1])
    assert not sessions.token_matches(settings(None), "")


def test_a_page_cursor_round_trips_and_a_bad_one_is_refused() -> None:
    at = datetime(2026, 12, 5, 18, 0, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, 42)) == (at, 42)
    with pytest.raises(InvalidRequest, match="not a page cursor"):
        decode_cursor("yesterday")


def test_a_message_query_names_only_the_filters_given_and_asks_one_row_more() -> None:
    sql, *args = MessageQuery(fingerprint="f" * 16, limit=10).sql()
    assert "booking_id" not in sql.split("WHERE")[1]
    assert args == ["f" * 16, 11]
    after = encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), 7)
    sql, *args = MessageQuery(fingerprint="f" * 16, text="50%_off", after=after).sql()
    assert "exception ILIKE $2" in sql
    assert "(last_failure_at, id) < ($3, $4)" in sql
    assert args[1] == "%50\\%\\_off%"


def test_the_trend_line_scales_to_the_busiest_hour() -> None:
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 1, 8]) == "▁▁█"
    assert sparkline([4, 8]) == "▄█"


def test_an_edit_keeps_the_event_matches_its_schema_and_shows_a_diff() -> None:
    original = confirmed(guest_email="nobody@exmple.com").to_json().decode()
    fixed = json.loads(original) | {"guest_email": "nobody@example.com"}
    body, diff = check_edit(original, json.dumps(fixed))
    assert json.loads(body)["guest_email"] == "nobody@example.com"
    assert '-  "guest_email": "nobody@exmple.com",' in diff
    assert '+  "guest_email": "nobody@example.com",' in diff


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"event_id": "6c8f0a9e-1b2c-4d3e-8f4a-5b6c7d8e9f00"}, "event_id cannot change"),
        ({"version": 2}, "version cannot change"),
        ({"check_out": "not a date"}, "does not match its schema"),
        ({"guest_email": 42}, "does not match its schema"),
    ],
)
def test_an_edit_that_changes_the_event_or_breaks_its_schema_is_refused(
    change: dict[str, object], refusal: str
) -> None:
    original = confirmed().to_json().decode()
    with pytest.raises(InvalidRequest, match=refusal):
        check_edit(original, json.dumps(json.loads(original) | change))
    with pytest.raises(InvalidRequest, match="not JSON"):
        check_edit(original, "{guest")
