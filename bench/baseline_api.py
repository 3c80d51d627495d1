"""`python -m bench.baseline_api`: the baselines of scenario 1, one uvicorn worker each.

``MODE=bare``: a bare FastAPI + asyncpg endpoint doing one INSERT per ``POST /bookings``.
``MODE=dualwrite``: the same, then a publish to the fanout with a publisher confirm inside
the request (the naive dual write the outbox replaces).
``MODE=celery`` / ``celery-confirm``: the INSERT, then ``.delay()`` of the seeds' three
Celery tasks (bench/celery_seed.py), without / with Celery's ``confirm_publish``. Called
as the seeds call it, directly in the async endpoint: kombu's publish is synchronous, so
the event loop waits for it (and for the broker's confirm, with ``confirm_publish``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Literal
from uuid import uuid4

import aio_pika
import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench import celery_seed
from shared.messaging.topology import EVENTS_EXCHANGE, declare_all

SCHEMA = """CREATE TABLE IF NOT EXISTS bare_bookings (
    id uuid PRIMARY KEY, hotel_id integer NOT NULL, room_type text NOT NULL,
    check_in date NOT NULL, check_out date NOT NULL, guest_name text NOT NULL,
    guest_email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"""


class BaselineSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str
    amqp_url: str
    port: int
    mode: Literal["bare", "dualwrite", "celery", "celery-confirm"] = "bare"
    db_pool_size: int = 20


class NewBooking(BaseModel):
    hotel_id: int
    room_type: str = Field(min_length=1, max_length=50)
    check_in: date
    check_out: date
    guest_name: str = Field(min_length=1, max_length=200)
    guest_email: EmailStr


def create_app(settings: BaselineSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Up to the booking service's pool size while measured; between its turns a
        # baseline gives its connections back, so that the four baselines, the booking
        # service and the three consumers fit in PostgreSQL's default max_connections (100).
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=1,
            max_size=settings.db_pool_size,
            max_inactive_connection_lifetime=2.0,
        )
        await pool.execute(SCHEMA)
        await pool.execute(celery_seed.DONE_SCHEMA)
        celery_seed.configure(settings.amqp_url, settings.mode == "celery-confirm")
        # 30 s: a broker busy with other work has taken 20 s to accept a connection.
        connection = await aio_pika.connect(settings.amqp_url, timeout=30)
        channel = await connection.channel(publisher_confirms=True)
        await declare_all(channel)
        app.state.pool = pool
        app.state.exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        yield
        await connection.close()
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bookings", status_code=201)
    async def book(body: NewBooking, request: Request) -> JSONResponse:
        db: asyncpg.Pool = request.app.state.pool
        booking_id = uuid4()
        await db.execute(
            "INSERT INTO bare_bookings (id, hotel_id, room_type, check_in, check_out,"
            " guest_name, guest_email) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            booking_id,
            body.hotel_id,
            body.room_type,
            body.check_in,
            body.check_out,
            body.guest_name,
            body.guest_email,
        )
        answer = {"id": str(booking_id), **body.model_dump(mode="json")}
        if settings.mode == "dualwrite":
            message = aio_pika.Message(
                json.dumps(answer).encode(),
                message_id=str(uuid4()),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await request.app.state.exchange.publish(message, routing_key="", timeout=5)
        elif settings.mode.startswith("celery"):
            for task in celery_seed.TASKS:
                task.delay(answer)  # blocks the event loop, as in the seeds
        return JSONResponse(answer, status_code=201)

    @app.get("/hotels")
    async def ready() -> list[str]:
        return []

    return app


if __name__ == "__main__":
    settings = BaselineSettings()
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        access_log=False,
    )
