"""GET /asyncapi.json: the AsyncAPI document of the events this system publishes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.booking.api.examples import ok
from services.booking.deps import SettingsDep
from shared.messaging import asyncapi

router = APIRouter(tags=["events"])


@router.get(
    "/asyncapi.json",
    summary="The AsyncAPI 3.0 document of the events",
    description=(
        "Generated from the pydantic event models: the fanout exchanges with their AMQP "
        "bindings, the message properties and the JSON schema of every event's body. Bind a "
        "queue of your own to a fanout to receive its events."
    ),
    responses={
        200: ok(
            {"asyncapi": "3.0.0", "info": {"title": "Hotel booking events"}, "channels": {}},
            "The AsyncAPI document (abridged here)",
        )
    },
)
async def asyncapi_document(settings: SettingsDep) -> dict[str, Any]:
    return asyncapi.build(settings.amqp_url)
