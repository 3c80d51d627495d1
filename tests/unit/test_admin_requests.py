"""The admin API's request bodies take what their JSON schema says, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.booking.api.admin_requests import ReplayRequest, Selection


@pytest.mark.parametrize(
    "body",
    [
        {"all": 0},
        {"all": "true"},
        {"all": True, "dry_run": 1},
        {"all": True, "limit": "5"},
        {"all": True, "limit": 2.5},
        {},
        {"ids": []},
        {"reason": None, "older_than": None},
    ],
)
def test_a_replay_body_the_schema_refuses_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReplayRequest.model_validate(body)


def test_a_replay_takes_json_numbers_and_any_one_selection() -> None:
    assert ReplayRequest.model_validate({"all": True, "limit": 5.0, "rate": 2}).limit == 5
    for selection in ({"ids": ["m-1"]}, {"reason": "x"}, {"event_type": "E"}, {"older_than": "0s"}):
        ReplayRequest.model_validate(selection)


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"all": True, "ids": ["m-1"]}, {"all": 1}])
def test_a_purge_takes_all_or_ids_never_both_nor_neither(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Selection.model_validate(body)
    assert Selection.model_validate({"all": True}).all
    assert Selection.model_validate({"ids": ["m-1"]}).ids == ["m-1"]
