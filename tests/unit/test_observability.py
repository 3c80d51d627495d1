"""Structured logs, tracing configuration and the runner's per-replica settings."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from devrun import run, supervisor
from shared import priority
from shared.errors import ConfigurationError
from shared.logging_setup import ContextFilter, JsonFormatter, message_context
from shared.observability.tracing import (
    context_from,
    current_traceparent,
    make_exporter,
    passed_on,
)


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter("email", "email-2"))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.json.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_logs_carry_the_message_ids_only_while_a_message_is_in_hand() -> None:
    stream = io.StringIO()
    log = _logger(stream)
    log.info("starting")
    with message_context(event_id="e-1", booking_id="b-1", correlation_id="b-1"):
        log.warning("attempt %d failed", 2)
        with message_context(event_id="e-2"):
            log.info("nested")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    before, during, nested, failure = (json.loads(line) for line in stream.getvalue().splitlines())

    assert before["message"] == "starting"
    assert (before["service"], before["replica"], before["level"]) == ("email", "email-2", "INFO")
    assert "event_id" not in before
    assert during["message"] == "attempt 2 failed"
    assert (during["event_id"], during["booking_id"], during["correlation_id"]) == (
        "e-1",
        "b-1",
        "b-1",
    )
    assert (nested["event_id"], nested["booking_id"]) == ("e-2", "b-1")
    assert "event_id" not in failure
    assert "ValueError: boom" in failure["exc_info"]
    assert failure["time"].endswith("+00:00")


def test_log_lines_inside_a_span_carry_its_trace_id() -> None:
    stream = io.StringIO()
    log = _logger(stream)
    with TracerProvider().get_tracer("test").start_as_current_span("work") as span:
        log.info("inside")
        traceparent = current_traceparent()
    line = json.loads(stream.getvalue())
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert traceparent is not None
    assert line["trace_id"] in traceparent


def test_a_traceparent_in_amqp_headers_is_read_whether_str_or_bytes() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    for value in (traceparent, traceparent.encode()):
        span = trace.get_current_span(context_from({"traceparent": value}))
        assert format(span.get_span_context().trace_id, "032x") == traceparent[3:35]
    assert not trace.get_current_span(context_from({"traceparent": 7})).get_span_context().is_valid


def test_a_row_s_traceparent_is_passed_on_as_it_is_and_a_malformed_one_is_dropped() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert passed_on(traceparent) == {"traceparent": traceparent}
    for malformed in (None, "", "00-zz", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "x" * 999):
        assert passed_on(malformed) == {}, malformed


def test_tracing_exporters_none_console_and_a_clear_error_for_the_rest() -> None:
    assert make_exporter("none") is None
    assert make_exporter("console") is not None
    with pytest.raises(ConfigurationError, match="unknown OTEL_TRACES_EXPORTER 'jaeger'"):
        make_exporter("jaeger")
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:  # the [otlp] extra is not installed: say how to get it
        with pytest.raises(ConfigurationError, match=r"pip install 'hotel-booking\[otlp\]'"):
            make_exporter("otlp")


def test_the_runner_gives_each_replica_its_own_ops_port_and_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HTTP_PORT", raising=False)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("NICENESS", raising=False)
    plan = run.plan(run.parse_scale(["email=3", "voucher=2"]))
    envs = {label: supervisor.replica_env(service, label) for service, label in plan}
    ports = {label: env.get("HTTP_PORT") for label, env in envs.items()}
    assert ports == {
        "booking": None,  # the API port serves its ops endpoints
        "notification": "8002",
        "email-1": "8003",
        "email-2": "8103",
        "email-3": "8203",
        "voucher-1": "8004",
        "voucher-2": "8104",
    }
    assert all(env["REPLICA_NAME"] == label for label, env in envs.items())
    assert {env["LOG_FORMAT"] for env in envs.values()} == {"text"}
    # The consumers yield the CPU to the booking API (shared/priority.py); it does not.
    niceness = {label: env.get("NICENESS") for label, env in envs.items()}
    assert niceness == {label: str(priority.BACKGROUND) for label in ports} | {"booking": None}
    monkeypatch.setenv("HTTP_PORT", "0")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("NICENESS", "0")  # what a developer's shell says wins
    assert supervisor.replica_env("email", "email-2") == {
        "REPLICA_NAME": "email-2",
        "LOG_FORMAT": "json",
        "HTTP_PORT": "0",
        "NICENESS": "0",
    }
