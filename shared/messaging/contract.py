"""The event contract: the AsyncAPI document as last released, committed as
docs/asyncapi.json, and the rule that guards it.

A consumer in another team reads that document (and may validate bodies against it), so an
event changes compatibly or gets a new version:

- compatible: a new field with a default (readers ignore fields they do not know), a wider
  enum, a longer limit;
- breaking: a field removed or retyped, an enum narrowed, a new field without a default.
  Then the event's ``version`` is raised (a new class in shared/events.py) and an upcaster
  from the old version (``shared.events.UPCASTERS``) lets every consumer read both.

``python -m shared.messaging.contract --write`` rewrites the committed copy, and refuses a
breaking change that kept its version; tests/unit/test_event_contract.py fails while the copy
is stale or the code breaks it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events import EVENT_TYPES, UPCASTERS
from shared.messaging import asyncapi

COPY = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"
# The server named in the committed copy: the compose deployment's broker.
URL = "amqp://rabbitmq:5672/"


def current() -> dict[str, Any]:
    return asyncapi.build(URL)


def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(COPY.read_text())
    return document


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` would break a reader of ``old``, per event type, or [] when it would not."""
    problems: list[str] = []
    for name, was in old["components"]["messages"].items():
        if name not in new["components"]["messages"]:
            problems.append(f"{name}: the event type was removed")
            continue
        old_schema, new_schema = (
            _schema(old, was),
            _schema(new, new["components"]["messages"][name]),
        )
        old_version, new_version = _version(old_schema), _version(new_schema)
        if new_version != old_version:
            problems += _missing_upcasters(name, old_version, new_version)
            continue
        found = _compare(old, new, old_schema, new_schema, name)
        found += _added_without_default(name, old_schema, new_schema, new_version)
        problems += [
            f"{problem} (in {name} v{old_version}: raise its version, with an upcaster)"
            for problem in found
        ]
    return problems


def _schema(document: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    return _resolve(document, message["payload"])


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _version(schema: dict[str, Any]) -> int:
    return int(schema["properties"]["version"]["const"])


def _missing_upcasters(name: str, old: int, new: int) -> list[str]:
    if new < old:
        return [f"{name}: its version went down from {old} to {new}"]
    return [
        f"{name}: v{version} is no longer read and has no upcaster (shared.events.UPCASTERS)"
        for version in range(old, new)
        if (name, version) not in UPCASTERS and (name, version) not in EVENT_TYPES
    ]


def _variants(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(document, schema)
    if "anyOf" in schema or "oneOf" in schema:
        alternatives = schema.get("anyOf", []) + schema.get("oneOf", [])
        return [v for alt in alternatives for v in _variants(document, alt)]
    return [schema]


def _types(variants: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for variant in variants:
        kind = variant.get("type", "object" if "properties" in variant else "any")
        found |= set(kind) if isinstance(kind, list) else {kind}
    return found


def _values(variants: list[dict[str, Any]]) -> set[str] | None:
    """The values an enum or const allows (as JSON), or None when any value of the type is."""
    values: set[str] = set()
    for variant in variants:
        if "const" in variant:
            values.add(json.dumps(variant["const"]))
        elif "enum" in variant:
            values |= {json.dumps(value) for value in variant["enum"]}
        elif variant.get("type") != "null":
            return None
    return values


def _compare(
    old_doc: dict[str, Any],
    new_doc: dict[str, Any],
    old: dict[str, Any],
    new: dict[str, Any],
    where: str,
) -> list[str]:
    old_variants, new_variants = _variants(old_doc, old), _variants(new_doc, new)
    old_types, new_types = _types(old_variants), _types(new_variants)
    if old_types != new_types:
        return [f"{where}: retyped from {sorted(old_types)} to {sorted(new_types)}"]
    problems: list[str] = []
    old_values, new_values = _values(old_variants), _values(new_variants)
    if old_values is not None and new_values is not None and not old_values <= new_values:
        narrowed = sorted(old_values - new_values)
        problems.append(f"{where}: no longer allows {', '.join(narrowed)}")
    old_fields = {k: v for o in old_variants for k, v in o.get("properties", {}).items()}
    new_fields = {k: v for n in new_variants for k, v in n.get("properties", {}).items()}
    for field, schema in old_fields.items():
        if field not in new_fields:
            problems.append(f"{where}.{field}: removed")
        else:
            problems += _compare(old_doc, new_doc, schema, new_fields[field], f"{where}.{field}")
    return problems


def _added_without_default(
    name: str, old: dict[str, Any], new: dict[str, Any], version: int
) -> list[str]:
    """A field a body written before it existed lacks: it must have a default."""
    model = EVENT_TYPES.get((name, version))
    added = set(new["properties"]) - set(old["properties"])
    if model is None:
        return []
    return [
        f"{name}.{field}: added without a default"
        for field in sorted(added)
        if field in model.model_fields and model.model_fields[field].is_required()
    ]


def main(argv: list[str]) -> int:
    if argv not in ([], ["--write"]):
        print("usage: python -m shared.messaging.contract [--write]", file=sys.stderr)
        return 2
    new = current()
    problems = breaking_changes(committed(), new) if COPY.exists() else []
    for problem in problems:
        print(f"breaking: {problem}", file=sys.stderr)
    if problems:
        return 1
    text = json.dumps(new, indent=2, sort_keys=True) + "\n"
    if argv == ["--write"]:
        COPY.parent.mkdir(exist_ok=True)
        COPY.write_text(text)
        print(f"wrote {COPY}")
        return 0
    stale = not COPY.exists() or COPY.read_text() != text
    print(f"{COPY} is {'stale: run with --write' if stale else 'up to date'}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
