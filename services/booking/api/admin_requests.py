"""The admin API's requests: path, header and body, each refused with a 422 and a reason when
it cannot work, before anything touches the audit table or the broker.

What reaches the audit table (a PostgreSQL row written before any message moves) is free of
NUL, which PostgreSQL cannot store; and every rule is in the OpenAPI document, so a client
can tell a request that will be refused from one that will be taken.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.booking.schemas import JSON_INTEGER
from shared.deadletters.errors import InvalidRequest
from shared.deadletters.model import (
    DURATION_PATTERN,
    NO_CONTROL_PATTERN,
    PG_INT_MAX,
    Filters,
    Label,
    no_control_characters,
    parse_duration,
)

# Characters of an AMQP queue name; anything else (a NUL, a slash) is a 422, not a lookup.
QUEUE_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
QUEUE_DESCRIPTION = "A service name (`email`) or a full queue name (`email.dlq`)"
QueueName = Annotated[str, Path(description=QUEUE_DESCRIPTION, pattern=QUEUE_PATTERN)]
Operator = Annotated[
    Annotated[str, AfterValidator(no_control_characters)] | None,
    Header(
        alias="X-Operator",
        min_length=1,
        max_length=100,
        description="Who asks, recorded in the audit log's actor (`api:<operator>@<client>`)",
        json_schema_extra={"pattern": NO_CONTROL_PATTERN},
    ),
]


# The JSON schemas say which selections are accepted (anyOf), so that a client, and a schema
# fuzzer, can tell a refused selection from an accepted one without asking.


def _purge_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [{"all": True}, {"ids": ["8d6f3c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d"]}]
    schema["anyOf"] = [
        {"required": ["all"], "properties": {"all": {"const": True}, "ids": {"maxItems": 0}}},
        {"required": ["ids"], "properties": {"all": {"const": False}, "ids": {"minItems": 1}}},
    ]


class Selection(BaseModel):
    """What a purge takes: everything (`all`) or exactly the given ids, never both."""

    # strict: 0 is not false, "1" is not a number (what the schema says, the API does).
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_purge_schema)

    all: bool = Field(default=False, description="Every message")
    ids: list[Label] = Field(default_factory=list, description="Exactly these message ids")

    @model_validator(mode="after")
    def _all_or_ids(self) -> Selection:
        if self.all and self.ids:
            raise ValueError("give either all or ids, not both")
        if not (self.all or self.ids):
            raise ValueError("say which messages: all, or ids")
        return self


def _replay_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [{"all": True, "reason": "retries-exhausted"}]
    selectors = {
        "all": {"const": True},
        "ids": {"minItems": 1},
        "reason": {"type": "string"},
        "event_type": {"type": "string"},
        "older_than": {"type": "string"},
        "fingerprint": {"type": "string"},
    }
    schema["anyOf"] = [
        {"required": [name], "properties": {name: rule}} for name, rule in selectors.items()
    ]


class ReplayRequest(BaseModel):
    """What a replay takes: `all`, `ids` or a filter must say which messages; set filters are
    ANDed."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_replay_schema)

    all: bool = Field(default=False, description="Every message (filters still apply)")
    ids: list[Label] = Field(default_factory=list, description="Exactly these message ids")
    reason: Label | None = Field(default=None, examples=["retries-exhausted"])
    event_type: Label | None = Field(default=None, examples=["BookingConfirmed"])
    older_than: str | None = Field(
        default=None,
        description="First failed at least this long ago: a number and s, m, h, d or w",
        examples=["30m"],
        pattern=DURATION_PATTERN,
    )
    fingerprint: Label | None = Field(
        default=None, description="Only this failure group's messages (see /admin/dlq/groups)"
    )
    limit: Annotated[int, Field(strict=True, ge=1, le=PG_INT_MAX), JSON_INTEGER] | None = None
    # At least 1/s: a slower replay would hold the request open past any client's patience.
    rate: float | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        allow_inf_nan=False,
        description="Messages per second at most",
    )
    dry_run: bool = False

    @field_validator("older_than", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parse_duration(value)
            except InvalidRequest as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _selects(self) -> ReplayRequest:
        if not (self.all or self.filters().narrowed):
            raise ValueError("say which messages: all, ids, or a filter")
        return self

    def filters(self) -> Filters:
        return Filters(
            select_all=self.all,
            ids=tuple(self.ids),
            reason=self.reason,
            event_type=self.event_type,
            older_than=parse_duration(self.older_than) if self.older_than else None,
            limit=self.limit,
            fingerprint=self.fingerprint,
        )
