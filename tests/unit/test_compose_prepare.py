"""When the compose tests skip: only where no engine can run, and they say why
(tests/compose/standins/engine.py), checked with no engine answering."""

from __future__ import annotations

import pytest

from tests.compose.standins import engine


@pytest.fixture(autouse=True)
def no_engine_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


def test_without_root_no_engine_can_be_started_and_that_is_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert engine.why_no_engine() == (
        "no Docker engine answers, and only root can install or start one"
    )


def test_as_root_without_docker_or_debian_packages_there_is_nothing_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: None)
    reason = engine.why_no_engine()
    assert reason is not None
    assert "not Debian" in reason


def test_as_root_with_dockerd_installed_the_tests_do_not_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    assert engine.why_no_engine() is None
