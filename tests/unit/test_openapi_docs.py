"""The OpenAPI document behind /docs: the POST /bookings example is valid as shown (a seeded
hotel and room type, a future stay), and every endpoint has a summary and response examples."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.booking.api.examples import BOOKING_ID
from services.booking.app import create_app
from services.booking.schemas import BookingRequest
from services.booking.settings import BookingSettings
from shared.voucher_code import voucher_code

SEED = Path(__file__).resolve().parents[2] / "services/booking/migrations/002_demo_hotels.sql"


@pytest.fixture
def openapi() -> dict[str, Any]:
    document: dict[str, Any] = create_app(BookingSettings()).openapi()  # connects to nothing
    return document


def operations(openapi: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
    ]


def test_the_post_bookings_example_books_a_seeded_room_in_the_future(
    openapi: dict[str, Any],
) -> None:
    body = openapi["paths"]["/bookings"]["post"]["requestBody"]["content"]["application/json"]
    schema = openapi["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
    [example] = schema["examples"]
    request = BookingRequest.model_validate(example)  # raises if the dates are in the past
    assert request.check_in > date.today()
    seeded = re.findall(r"\((\d+), '(\w+)', '[^']+', [\d.]+, (\d+)\)", SEED.read_text())
    assert (str(request.hotel_id), request.room_type) in {(h, code) for h, code, _ in seeded}


def test_every_endpoint_has_a_summary_and_an_example_for_every_json_response(
    openapi: dict[str, Any],
) -> None:
    assert "/asyncapi.json" in openapi["paths"]
    assert len(operations(openapi)) >= 7
    for name, operation in operations(openapi):
        assert operation.get("summary"), name
        assert any(code.startswith("2") for code in operation["responses"]), name
        for code, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                assert "example" in content or "examples" in content, (name, code, media_type)


def test_the_booking_token_is_a_header_scheme_the_docs_offer_under_authorize(
    openapi: dict[str, Any],
) -> None:
    scheme = openapi["components"]["securitySchemes"]["BookingToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Booking-Token")
    read = openapi["paths"]["/bookings/{booking_id}"]["get"]
    assert read["security"] == [{"BookingToken": []}, {}]  # optional: without it, less
    for path, method in (
        ("/bookings/{booking_id}/cancel", "post"),
        ("/bookings/{booking_id}/voucher", "get"),
    ):
        operation = openapi["paths"][path][method]
        assert operation["security"] == [{"BookingToken": []}], path
        assert "401" in operation["responses"], path
    # Never in a query string, which access logs and proxies record.
    for name, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            assert not (parameter["in"] == "query" and "token" in parameter["name"].lower()), name
    created = openapi["components"]["schemas"]["BookingCreated"]
    assert "management_token" in created["required"]
    assert set(openapi["components"]["schemas"]["BookingStatus"]["properties"]) == {
        "id",
        "status",
        "fulfilment",
    }


async def test_the_docs_page_loads_swagger_ui_from_this_process_not_a_cdn() -> None:
    transport = httpx.ASGITransport(app=create_app(BookingSettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://docs.test") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        scripts = re.findall(r'src="([^"]+)"', page.text)
        assert scripts == ["http://docs.test/docs/assets/swagger-ui-bundle.js"]
        bundle = await client.get(scripts[0])
        assert bundle.status_code == 200
        assert "SwaggerUIBundle" in bundle.text
        assert (await client.get("/docs/assets/..%2Fmain.py")).status_code == 404


def _integers(schema: Any, components: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """Every integer schema reachable from ``schema`` (through $ref, anyOf, properties)."""
    if isinstance(schema, list):
        return [hit for item in schema for hit in _integers(item, components, where)]
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _integers(components[name], components, f"{where}>{name}")
    found = [(where, schema)] if schema.get("type") == "integer" else []
    nested = [
        *schema.get("properties", {}).values(),
        schema.get("items"),
        *schema.get("anyOf", []),
        *schema.get("oneOf", []),
        *schema.get("allOf", []),
    ]
    return found + _integers(nested, components, where)


def test_every_integer_a_client_sends_is_bounded_in_the_document(openapi: dict[str, Any]) -> None:
    """Ids are PostgreSQL integers: an unbounded one was a 500 (asyncpg's int32 overflow)."""
    components = openapi["components"]["schemas"]
    inputs: list[tuple[str, Any]] = []
    for name, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            inputs += _integers(parameter["schema"], components, f"{name} {parameter['name']}")
        for content in operation.get("requestBody", {}).get("content", {}).values():
            inputs += _integers(content["schema"], components, f"{name} body")
    assert len(inputs) >= 5  # hotel_id in a path and a body, three limits
    unbounded = [
        where
        for where, schema in inputs
        if "maximum" not in schema or not ({"minimum", "exclusiveMinimum"} & schema.keys())
    ]
    assert unbounded == []


def test_a_new_booking_links_to_reading_cancelling_and_its_voucher(
    openapi: dict[str, Any],
) -> None:
    created = openapi["paths"]["/bookings"]["post"]["responses"]["201"]
    targets = {name: link["operationRef"] for name, link in created["links"].items()}
    assert targets == {
        "GetBooking": "#/paths/~1bookings~1{booking_id}/get",
        "CancelBooking": "#/paths/~1bookings~1{booking_id}~1cancel/post",
        "GetVoucher": "#/paths/~1bookings~1{booking_id}~1voucher/get",
    }
    for ref in targets.values():
        path, method = ref.removeprefix("#/paths/").replace("~1", "/").rsplit("/", 1)
        assert method in openapi["paths"][path]
    assert created["headers"]["Location"]["required"] is True


def test_every_operation_with_a_body_documents_a_body_that_is_not_json_or_too_large(
    openapi: dict[str, Any],
) -> None:
    with_body = [(name, op) for name, op in operations(openapi) if "requestBody" in op]
    # POST /bookings, replay, purge; a failure group's retry, canary, purge and state; edit
    assert len(with_body) == 8
    for name, operation in with_body:
        assert {"400", "413", "422"} <= operation["responses"].keys(), name


def test_the_voucher_is_a_documented_binary_download_and_its_examples_codes_are_real(
    openapi: dict[str, Any],
) -> None:
    voucher = openapi["paths"]["/bookings/{booking_id}/voucher"]["get"]["responses"]
    pdf = voucher["200"]["content"]["application/pdf"]
    assert pdf["schema"]["format"] == "binary"
    assert voucher["200"]["headers"]["Content-Disposition"]["description"].startswith("attachment;")
    codes = set(re.findall(r"\b[A-Z]{1,2}-[0-9A-Z-]{4,}", json.dumps(openapi)))
    real = voucher_code(UUID(BOOKING_ID))
    assert codes == {real}
    assert real in voucher["410"]["content"]["application/problem+json"]["example"]["detail"]


def test_no_parameter_shows_a_union_with_null(openapi: dict[str, Any]) -> None:
    for name, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            assert "anyOf" not in parameter["schema"], (name, parameter["name"])
    [key] = [p for p in openapi["paths"]["/bookings"]["post"]["parameters"]]
    assert key["name"] == "Idempotency-Key"
    assert key["schema"]["type"] == "string"
    assert key["required"] is False
