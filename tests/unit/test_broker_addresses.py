"""Several brokers in one AMQP_URL (shared/messaging/addresses.py): how the list is read, the
order a process tries the nodes in, and a connect that skips nodes which refuse or never
answer (sockets only: the integration test tests/integration/test_broker_failover.py and the
cluster suite tests/cluster use real brokers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from services.booking.settings import BookingSettings
from services.bookingctl.settings import DlqSettings
from shared.errors import BrokerUnavailable, ConfigurationError
from shared.messaging import addresses
from shared.messaging.addresses import AddressError, Rotation, split
from shared.messaging.asyncapi import build
from shared.messaging.connection import broker_user, connect, redact
from shared.settings import CommonSettings, load_settings

CLUSTER = "amqp://booking:s%2Fecret@rabbitmq:5672,rabbitmq-2:5673, rabbitmq-3/hotel?heartbeat=10"


def test_each_host_of_a_list_gets_the_user_password_vhost_and_options_of_the_url() -> None:
    assert split(CLUSTER) == (
        "amqp://booking:s%2Fecret@rabbitmq:5672/hotel?heartbeat=10",
        "amqp://booking:s%2Fecret@rabbitmq-2:5673/hotel?heartbeat=10",
        "amqp://booking:s%2Fecret@rabbitmq-3/hotel?heartbeat=10",
    )


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/",
        "amqp://guest:guest@127.0.0.1:5672",
        "amqp://h?heartbeat=5",
        "amqp://user:pa,ss@host/vhost",  # a comma in the password is not a host list
        "amqp://user@host/v,hosts",  # nor in the vhost
    ],
)
def test_a_url_with_one_host_is_taken_as_it_is(url: str) -> None:
    assert split(url) == (url,)


def test_a_list_without_user_or_path_is_split_too() -> None:
    assert split("amqp://a,b:5673?heartbeat=1") == (
        "amqp://a?heartbeat=1",
        "amqp://b:5673?heartbeat=1",
    )


@pytest.mark.parametrize("url", ["amqp://u@a,,b/v", "amqp://u@a,/v", "amqp://,a"])
def test_an_empty_host_in_the_list_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(AddressError, match="empty broker address"):
        split(url)


def test_settings_refuse_an_unreadable_host_list_at_start_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"AMQP_URL: .*empty broker address"):
        load_settings(CommonSettings, amqp_url="amqp://u:p@a,,b/v", dev_mode=True)
    with pytest.raises(ConfigurationError, match=r"ADMIN_AMQP_URL: .*empty broker address"):
        load_settings(BookingSettings, admin_amqp_url="amqp://u:p@a,/v", dev_mode=True)


@pytest.mark.parametrize("settings_class", [CommonSettings, BookingSettings, DlqSettings])
def test_every_process_and_bookingctl_take_a_list_of_brokers(settings_class: type[Any]) -> None:
    settings = load_settings(settings_class, amqp_url=CLUSTER, dev_mode=True)
    assert addresses.rotation(settings.amqp_url).addresses == split(CLUSTER)


def test_the_passwords_of_a_list_are_checked_like_one_urls() -> None:
    with pytest.raises(ConfigurationError, match="AMQP_URL is a placeholder"):
        load_settings(CommonSettings, amqp_url="amqp://u:example-CHANGE-ME@a,b/v", dev_mode=False)


def test_an_attempt_tries_every_node_once_and_the_next_starts_one_further() -> None:
    rotation = Rotation(["a", "b", "c"], start=1)
    assert rotation.attempt() == ("b", "c", "a")
    # Another connection opened at the same time starts elsewhere.
    assert rotation.attempt() == ("c", "a", "b")
    assert rotation.attempt() == ("a", "b", "c")


def test_after_a_connection_the_next_attempt_starts_with_the_node_after_it() -> None:
    rotation = Rotation(["a", "b", "c"], start=0)
    rotation.attempt()
    rotation.connected("a")
    assert rotation.attempt() == ("b", "c", "a")  # a second connection: another node
    rotation.connected("c")  # b failed, c took it
    assert rotation.attempt() == ("a", "b", "c")  # c lost: a is tried before c again


def test_the_first_start_is_spread_over_the_nodes() -> None:
    starts = {Rotation(["a", "b", "c"]).attempt()[0] for _ in range(200)}
    assert starts == {"a", "b", "c"}


def test_one_rotation_per_setting_is_shared_by_the_processs_connections() -> None:
    url = "amqp://u@shared-a,shared-b/v"
    assert addresses.rotation(url) is addresses.rotation(url)
    assert addresses.rotation(url).addresses == split(url)


def test_what_needs_one_broker_reads_the_first_and_logs_never_show_the_password() -> None:
    assert broker_user(CLUSTER) == "booking"
    assert "s%2Fecret" not in redact(CLUSTER)
    servers = build(CLUSTER)["servers"]
    assert [s["host"] for s in servers.values()] == [
        "rabbitmq:5672",
        "rabbitmq-2:5673",
        "rabbitmq-3:5672",
    ]
    assert list(servers) == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_a_connect_tries_each_node_in_turn_and_names_every_failure(
    refusing_port: int, silent_port: int
) -> None:
    url = f"amqp://u:p@127.0.0.1:{refusing_port},127.0.0.1:{silent_port}/v"
    with pytest.raises(BrokerUnavailable) as raised:
        await connect(url, name="test", timeout=0.3)
    message = str(raised.value)
    assert f":{refusing_port}/" in message
    assert f":{silent_port}/" in message
    assert "p@" not in message
