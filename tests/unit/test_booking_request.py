from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.booking.app import create_app
from services.booking.schemas import BookingRequest
from services.booking.settings import BookingSettings


def test_the_example_shown_in_the_docs_is_a_valid_booking() -> None:
    # Building the app connects to nothing: clients are created in its lifespan.
    schema = create_app(BookingSettings()).openapi()["components"]["schemas"]["BookingRequest"]
    [example] = schema["examples"]
    request = BookingRequest.model_validate(example)
    assert request.check_in > date.today()
    assert request.nights == 3


@pytest.mark.parametrize("name", ["Eve\r\nBcc: x@y.z", "Eve\nX", "Eve\x00", "Eve\u2028X"])
def test_names_with_control_characters_are_refused(name: str) -> None:
    check_in = date.today() + timedelta(days=5)
    with pytest.raises(ValidationError, match="control characters"):
        BookingRequest(
            hotel_id=1,
            room_type="standard",
            check_in=check_in,
            check_out=check_in + timedelta(days=1),
            guest_name=name,
            guest_email="eve@example.com",
        )


def test_a_stay_of_thirty_nights_is_allowed_and_thirty_one_is_not() -> None:
    check_in = date.today() + timedelta(days=5)
    base = {
        "hotel_id": 1,
        "room_type": "standard",
        "check_in": check_in,
        "guest_name": "A",
        "guest_email": "a@example.com",
    }
    assert (
        BookingRequest.model_validate({**base, "check_out": check_in + timedelta(days=30)}).nights
        == 30
    )
    with pytest.raises(ValidationError, match="at most 30 nights"):
        BookingRequest.model_validate({**base, "check_out": check_in + timedelta(days=31)})


@pytest.mark.parametrize(("given", "taken"), [(1, 1), (1.0, 1), ("1", None), (True, None)])
def test_a_hotel_id_is_a_json_integer_not_a_string_or_a_boolean(
    given: object, taken: object
) -> None:
    """What the OpenAPI document says (type integer: 1 and 1.0), not pydantic's lax mode."""
    check_in = date.today() + timedelta(days=5)
    body = {
        "hotel_id": given,
        "room_type": "standard",
        "check_in": check_in,
        "check_out": check_in + timedelta(days=1),
        "guest_name": "A",
        "guest_email": "a@example.com",
    }
    if taken is None:
        with pytest.raises(ValidationError, match="valid integer"):
            BookingRequest.model_validate(body)
    else:
        assert BookingRequest.model_validate(body).hotel_id == taken
