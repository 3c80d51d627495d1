"""The files that follow from the consumer registry (shared/registry.py) are what
deploy/generate.py writes, and the registry says what each service really does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.email.bootstrap import make_handlers as email_handlers
from services.email.settings import EmailSettings
from services.email.smtp import SmtpSender
from services.notification.bootstrap import make_handlers as notification_handlers
from services.notification.settings import NotificationSettings
from services.voucher.bootstrap import make_handlers as voucher_handlers
from services.voucher.settings import VoucherSettings
from shared import registry
from shared.db.schemas import SCHEMAS
from shared.events import FulfilmentProgressed
from shared.messaging.topology import CONSUMER_SERVICES

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import generate  # noqa: E402


@pytest.mark.parametrize("path", list(generate.PARTS), ids=lambda p: p.name)
def test_the_generated_parts_are_what_the_generator_writes(path: Path) -> None:
    text = path.read_text()
    assert generate.render(path, text) == text, f"stale: run `make generated` ({path.name})"


def test_every_consumer_of_the_registry_has_its_compose_service_and_passwords() -> None:
    compose = generate.COMPOSE.read_text()
    example = generate.ENV_EXAMPLE.read_text()
    kubernetes = generate.APPS.read_text()
    for name in registry.NAMES:
        assert f"\n  {name}:\n    <<: *app\n" in compose
        assert f"kind: ScaledObject\nmetadata:\n  name: {name}\n" in kubernetes
        assert f"RABBITMQ_{name.upper()}_PASSWORD=" in example
        assert f"POSTGRES_{name.upper()}_PASSWORD=" in example


def test_the_topology_steps_and_schemas_follow_the_registry() -> None:
    assert CONSUMER_SERVICES == registry.NAMES
    assert {s.name for s in SCHEMAS} == {"booking", "ops", *registry.NAMES}
    step = FulfilmentProgressed.model_json_schema()["properties"]["step"]
    assert step["enum"] == list(registry.NAMES)


def test_each_consumer_handles_exactly_what_the_registry_says() -> None:
    email = EmailSettings()
    built = {
        "email": email_handlers(email, SmtpSender.from_settings(email)),
        "voucher": voucher_handlers(VoucherSettings()),
        # The deliverer is only called by a handler, never by building them.
        "notification": notification_handlers(NotificationSettings(), None),  # type: ignore[arg-type]
    }
    assert set(built) == set(registry.NAMES)
    for name, handlers in built.items():
        assert set(handlers) == set(registry.consumer_service(name).handles), name


def test_no_code_lists_the_consumers_but_the_registry() -> None:
    """The list of consumers is written once: a line of code or SQL that names all of them
    is a copy (the booking table's CHECK on its steps was one: a new consumer's reports
    failed on it)."""
    names = registry.NAMES
    # History: the migration that made the copy, undone by 008 (migrations are never edited).
    history = {"services/booking/migrations/003_fulfilment.sql"}
    copies = []
    for folder in ("shared", "services", "devrun", "deploy", "bench"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".sql", ".yaml") or path.name == "registry.py":
                continue
            if str(path.relative_to(ROOT)) in history:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0].split("--", 1)[0]
                if all(f'"{n}"' in code or f"'{n}'" in code for n in names):
                    copies.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert copies == []
