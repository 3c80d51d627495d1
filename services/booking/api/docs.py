"""The docs UI at /docs, with Swagger UI's files served by this process (from the
fastapi-swagger wheel, which packages the current Swagger UI release) instead of FastAPI's
default CDN: the page then works offline, behind a strict egress firewall or CSP, and always
matches the OpenAPI 3.1 document FastAPI generates.

The document itself is served here too (/openapi.json), so that the POST /bookings example
"Try it out" sends is one that books: a stay with a room free every night, looked up when the
document is fetched, for a guest email of its own (each has its own rate limit)."""

from __future__ import annotations

import logging
import secrets
from datetime import date, timedelta
from importlib import resources
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from services.booking import repository as repo
from services.booking.deps import PoolDep, SettingsDep
from services.booking.schemas import example_booking, today
from services.booking.settings import BookingSettings
from shared.db.pool import acquire

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
OPENAPI_URL = "/openapi.json"
EXAMPLE_DAYS_AHEAD = 30  # the example's stay starts this far ahead, or later when full
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    def asset(name: str) -> str:
        return str(request.url_for("docs_asset", name=name))

    return get_swagger_ui_html(
        openapi_url=request.scope.get("root_path", "").rstrip("/") + OPENAPI_URL,
        title=f"{request.app.title} - API docs",
        swagger_js_url=asset("swagger-ui-bundle.js"),
        swagger_css_url=asset("swagger-ui.css"),
        swagger_favicon_url=asset("favicon-32x32.png"),
        swagger_ui_parameters={"displayRequestDuration": True},
    )


@router.get("/docs/assets/{name}", name="docs_asset")
async def docs_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no docs asset {name!r}")
    content = (resources.files("fastapi_swagger") / "resources" / name).read_bytes()
    return Response(content, media_type=ASSETS[name], headers={"Cache-Control": "max-age=3600"})


@router.get(OPENAPI_URL)
async def openapi(request: Request, pool: PoolDep, settings: SettingsDep) -> JSONResponse:
    document: dict[str, Any] = dict(request.app.openapi())
    root_path = request.scope.get("root_path", "").rstrip("/")
    if root_path:  # what FastAPI's own route does behind a proxy's prefix
        document["servers"] = [{"url": root_path}, *document.get("servers", [])]
    components = dict(document["components"])
    schemas = components["schemas"] = dict(components["schemas"])
    example = await bookable_example(pool, settings)
    schemas["BookingRequest"] = {**schemas["BookingRequest"], "examples": [example]}
    document["components"] = components
    return JSONResponse(document)


async def bookable_example(pool: asyncpg.Pool, settings: BookingSettings) -> dict[str, Any]:
    """The request body of a booking that can be made now: the first stay of the example's
    length with a room free every night, from EXAMPLE_DAYS_AHEAD days on, within the booking
    horizon. The fixed example when none is free (or the database is down: the docs still
    load)."""
    example = example_booking()
    nights = date.fromisoformat(example["check_out"]) - date.fromisoformat(example["check_in"])
    first = today() + timedelta(days=min(EXAMPLE_DAYS_AHEAD, settings.booking_horizon_days))
    last = min(first + timedelta(days=365), today() + timedelta(settings.booking_horizon_days))
    try:
        async with acquire(pool, settings.db_acquire_timeout) as conn:
            stay = await repo.free_stay(conn, nights.days, first, last)
    except Exception as exc:
        log.warning("no bookable example for the docs: %r", exc)
        stay = None
    name, domain = example["guest_email"].split("@")
    example["guest_email"] = f"{name}+{secrets.token_hex(3)}@{domain}"
    if stay is not None:
        check_in: date = stay["check_in"]
        example |= {
            "hotel_id": stay["hotel_id"],
            "room_type": stay["code"],
            "check_in": check_in.isoformat(),
            "check_out": (check_in + nights).isoformat(),
        }
    return example


def one_type_per_parameter(openapi: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema as the type it has when sent: pydantic writes
    ``str | None`` as anyOf string or null, which the docs UI shows as "string | (string |
    null)", though a header or query parameter is never null, only absent (required: false
    already says so). Changed in place, for every operation (app.py), and returned."""
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                kinds = schema.get("anyOf", [])
                if not parameter.get("required") and {"type": "null"} in kinds:
                    [sent] = [kind for kind in kinds if kind != {"type": "null"}]
                    rest = {key: value for key, value in schema.items() if key != "anyOf"}
                    parameter["schema"] = {**sent, **rest}
    return openapi
