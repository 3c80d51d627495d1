"""The problems in the OpenAPI document: every 4xx and 5xx response of every operation says
``application/problem+json`` with the Problem schema (or a schema extending it, named
``...Problem``), and its examples are problems. Applied to the generated document as a
whole (app.py), so routes declare their error responses as before, in a line each, and a
route added later is documented the same way without knowing of it."""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from services.booking.api.examples import NOT_JSON, TOO_LARGE
from services.booking.api.problems import FieldError, Problem, summary
from shared.http.problems import MEDIA_TYPE, body

REF = "#/components/schemas/{model}"
# FastAPI's own 422 schemas, replaced by Problem wherever they were used.
REPLACED = ("HTTPValidationError", "ValidationError")


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` with its error responses as problems (changed in place, and returned)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, FieldError):
        schema = model.model_json_schema(ref_template=REF, mode="serialization")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "requestBody" in operation:  # any body may be unreadable or too large
                responses.setdefault("400", copy.deepcopy(NOT_JSON))
                responses.setdefault("413", copy.deepcopy(TOO_LARGE))
            for code, response in responses.items():
                if code[:1] in ("4", "5") and code.isdigit():
                    response["content"] = {MEDIA_TYPE: _content(int(code), response)}
    for name in REPLACED:
        schemas.pop(name, None)
    return openapi


def _content(status: int, response: dict[str, Any]) -> dict[str, Any]:
    contents = list(response.get("content", {}).values())
    schema: dict[str, Any] = next((c["schema"] for c in contents if "schema" in c), {})
    named = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    kept = schema if named.endswith("Problem") else {"$ref": REF.format(model="Problem")}
    content: dict[str, Any] = {"schema": kept}
    with_example: dict[str, Any] = next(
        (c for c in contents if "example" in c or "examples" in c), {}
    )
    if "examples" in with_example:
        content["examples"] = {
            name: {**one, "value": as_problem(status, one.get("value"))}
            for name, one in with_example["examples"].items()
        }
    else:
        default = response.get("description") or HTTPStatus(status).phrase
        content["example"] = as_problem(status, with_example.get("example", default))
    return content


def as_problem(status: int, example: Any) -> dict[str, Any]:
    """An example as a problem: one already complete is kept; ``{"detail": ...}`` (a sentence
    or FastAPI's list of issues) and bare text become one."""
    if isinstance(example, dict) and "type" in example:
        return example
    detail = example.get("detail") if isinstance(example, dict) else example
    if isinstance(detail, list):
        return body(
            status,
            summary(detail),
            problem="invalid-request",
            title="Invalid request",
            errors=detail,
        )
    return body(status, str(detail))
