"""The event contract (docs/asyncapi.json, the AsyncAPI document as released) guards every
event: the code may add fields with defaults and widen enums, but a removed or retyped field,
a narrowed enum or a new field without a default fails here unless the event's version is
raised and an upcaster lets consumers read the old version too."""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field

from shared import events
from shared.errors import InvalidMessage
from shared.events import BookingConfirmed, decode_event
from shared.messaging import contract
from tests.support.events import confirmed


@pytest.fixture
def document() -> dict[str, Any]:
    return contract.current()


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_the_committed_contract_is_the_document_the_code_generates() -> None:
    text = json.dumps(contract.current(), indent=2, sort_keys=True) + "\n"
    assert contract.COPY.read_text() == text, (
        "docs/asyncapi.json is stale: python -m shared.messaging.contract --write"
    )


def test_the_code_breaks_no_reader_of_the_committed_contract() -> None:
    assert contract.breaking_changes(contract.committed(), contract.current()) == []


def test_a_removed_a_retyped_and_a_nested_removed_field_and_a_narrowed_enum_break_it(
    document: dict[str, Any],
) -> None:
    changed = copy.deepcopy(document)
    del schema(changed, "BookingConfirmed")["properties"]["guest_email"]
    schema(changed, "BookingConfirmed")["properties"]["nights"] = {"type": "string"}
    del schema(changed, "StayDetails")["properties"]["check_in_from"]
    status = schema(changed, "FulfilmentProgressed")["properties"]["status"]
    status["enum"] = [value for value in status["enum"] if value != "failed"]
    problems = contract.breaking_changes(document, changed)
    assert len(problems) == 5  # the nested one in each booking event
    joined = "\n".join(problems)
    assert "BookingConfirmed.guest_email: removed (in BookingConfirmed v1" in joined
    assert "BookingConfirmed.nights: retyped from ['integer'] to ['string']" in joined
    assert "BookingConfirmed.stay_details.check_in_from: removed" in joined
    assert "BookingCancelled.stay_details.check_in_from: removed" in joined
    assert 'FulfilmentProgressed.status: no longer allows "failed"' in joined
    assert "raise its version, with an upcaster" in joined


def test_a_field_added_with_a_default_and_a_wider_enum_break_nothing(
    document: dict[str, Any],
) -> None:
    released = copy.deepcopy(document)  # as if released before stay_details existed
    del schema(released, "BookingConfirmed")["properties"]["stay_details"]
    status = schema(released, "FulfilmentProgressed")["properties"]["status"]
    status["enum"] = status["enum"][:1]
    assert contract.breaking_changes(released, document) == []


def test_a_field_added_without_a_default_breaks_it(document: dict[str, Any]) -> None:
    released = copy.deepcopy(document)
    del schema(released, "BookingConfirmed")["properties"]["guest_name"]
    assert contract.breaking_changes(released, document) == [
        "BookingConfirmed.guest_name: added without a default "
        "(in BookingConfirmed v1: raise its version, with an upcaster)"
    ]


def test_a_raised_version_needs_an_upcaster_from_the_old_one(
    document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = copy.deepcopy(document)
    del schema(raised, "BookingConfirmed")["properties"]["guest_email"]  # breaking, but...
    schema(raised, "BookingConfirmed")["properties"]["version"]["const"] = 2  # ...raised
    monkeypatch.delitem(events.EVENT_TYPES, ("BookingConfirmed", 1))  # and v1 not read as is
    assert contract.breaking_changes(document, raised) == [
        "BookingConfirmed: v1 is no longer read and has no upcaster (shared.events.UPCASTERS)"
    ]
    monkeypatch.setitem(events.UPCASTERS, ("BookingConfirmed", 1), _to_v2)
    assert contract.breaking_changes(document, raised) == []


class BookingConfirmedV2(BookingConfirmed):
    """What a version 2 might be: the guest's email renamed to ``guest_contact``."""

    event_type: ClassVar[str] = "BookingConfirmed"
    version: Literal[2] = 2  # type: ignore[assignment]
    guest_email: str = Field(default="", exclude=True)
    guest_contact: str = Field(min_length=3, max_length=254)


def _to_v2(body: dict[str, Any]) -> dict[str, Any]:
    upcast = {key: value for key, value in body.items() if key != "guest_email"}
    return {**upcast, "version": 2, "guest_contact": body["guest_email"]}


def test_with_an_upcaster_a_consumer_reads_both_the_old_and_the_new_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(events.EVENT_TYPES, ("BookingConfirmed", 1))
    monkeypatch.setitem(events.EVENT_TYPES, ("BookingConfirmed", 2), BookingConfirmedV2)
    monkeypatch.setitem(events.UPCASTERS, ("BookingConfirmed", 1), _to_v2)
    old = confirmed(guest_email="ada@example.com")
    from_v1 = decode_event(old.to_json())
    assert isinstance(from_v1, BookingConfirmedV2)
    assert (from_v1.version, from_v1.guest_contact) == (2, "ada@example.com")
    assert from_v1.event_id == old.event_id
    from_v2 = decode_event(from_v1.to_json())
    assert from_v2 == from_v1
    monkeypatch.setitem(events.UPCASTERS, ("BookingConfirmed", 1), lambda body: body)
    with pytest.raises(InvalidMessage, match="did not raise it"):
        decode_event(old.to_json())
    monkeypatch.setitem(events.UPCASTERS, ("BookingConfirmed", 1), lambda body: body["x"])
    with pytest.raises(InvalidMessage, match="cannot be upcast: KeyError"):
        decode_event(old.to_json())
