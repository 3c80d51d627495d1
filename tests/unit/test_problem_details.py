"""Errors are RFC 9457 problems (application/problem+json: type, title, status, detail, and
errors for refused fields), answered and documented in one place, so that a route added
later gets both without a line of its own. No database is needed for these refusals: the app
runs without its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jsonschema
import pytest
from fastapi import FastAPI, HTTPException

from services.booking.api.examples import error
from services.booking.api.problems import Problem
from services.booking.app import create_app
from services.booking.settings import BookingSettings
from shared.http.problems import MEDIA_TYPE

REQUIRED = {"type", "title", "status", "detail"}


def late_route(app: FastAPI) -> None:
    """A route as another team might add it: its error declared the old way, raised as an
    HTTPException."""

    @app.get("/late", summary="Added later", responses={409: error("Clash", "it clashes")})
    async def late(n: int) -> dict[str, int]:
        raise HTTPException(409, f"{n} clashes")

    @app.get("/late/database", summary="Added later, its database gone")
    async def late_database(code: str) -> dict[str, int]:
        raise asyncpg.PostgresError.new({"C": code, "M": "the server says no"})


@pytest.fixture
def app() -> FastAPI:
    built = create_app(BookingSettings(max_body_bytes=1024))
    late_route(built)
    return built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def validator(openapi: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A validator of ``schema`` that resolves the document's #/components/... references."""
    resolvable = {**schema, "components": openapi["components"]}
    return jsonschema.Draft202012Validator(resolvable)


def error_responses(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", code, response)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        for code, response in operation["responses"].items()
        if code[0] in "45"
    ]


def test_every_error_response_of_every_operation_is_a_documented_problem(app: FastAPI) -> None:
    openapi = app.openapi()
    responses = error_responses(openapi)
    assert len(responses) > 30
    assert ("GET /late", "409") in [(name, code) for name, code, _ in responses]
    for name, code, response in responses:
        assert list(response["content"]) == [MEDIA_TYPE], (name, code)
        content = response["content"][MEDIA_TYPE]
        assert content["schema"]["$ref"].endswith("Problem"), (name, code)
        check = validator(openapi, content["schema"])
        examples = [content["example"]] if "example" in content else []
        examples += [one["value"] for one in content.get("examples", {}).values()]
        assert examples, (name, code)
        for example in examples:
            assert list(check.iter_errors(example)) == [], (name, code, example)
            assert example["status"] == int(code), (name, code)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


def test_a_route_added_later_is_documented_with_problems_and_its_body_refusals(
    app: FastAPI,
) -> None:
    responses = app.openapi()["paths"]["/late"]["get"]["responses"]
    assert set(responses) == {"200", "409", "422"}
    assert responses["409"]["content"][MEDIA_TYPE]["example"]["detail"] == "it clashes"
    # Every operation with a body documents the body it cannot read or take (400, 413).
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"]), (method, path)


async def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert set(body) >= REQUIRED
    assert body["status"] == status
    Problem.model_validate(body)
    return body


async def test_refusals_of_every_kind_are_answered_as_problems(client: httpx.AsyncClient) -> None:
    json_header = {"content-type": "application/json"}
    unknown = await _problem(await client.get("/no/such/path"), 404)
    assert unknown["type"] == "about:blank"
    assert unknown["title"] == "Not Found"

    wrong_method = await client.delete("/hotels")
    await _problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "GET"

    not_utf8 = await client.post(
        "/bookings", content=b'{"guest_name": "\xff"}', headers=json_header
    )
    assert "body" in (await _problem(not_utf8, 400))["detail"]

    not_json = await _problem(
        await client.post("/bookings", content=b"{", headers=json_header), 422
    )
    assert not_json["type"].endswith(":invalid-request")
    assert not_json["errors"][0]["type"] == "json_invalid"
    assert not_json["detail"].startswith("body")

    too_large = await client.post("/bookings", content=b"x" * 2000, headers=json_header)
    assert "1024 bytes" in (await _problem(too_large, 413))["detail"]

    late = await _problem(await client.get("/late", params={"n": 7}), 409)
    assert late["detail"] == "7 clashes"
    late_invalid = await _problem(await client.get("/late", params={"n": "seven"}), 422)
    assert late_invalid["errors"][0]["loc"] == ["query", "n"]


@pytest.mark.parametrize(
    "sqlstate",
    ["57P01", "57P02", "57P03", "53300", "08006"],  # shut down, crashed, starting, full, gone
)
async def test_a_database_restarting_or_full_is_a_503_problem_not_a_500(
    client: httpx.AsyncClient, sqlstate: str
) -> None:
    answer = await client.get("/late/database", params={"code": sqlstate})
    problem = await _problem(answer, 503)
    assert problem["type"].endswith(":database-unavailable")
    assert answer.headers["retry-after"] == "1"
