"""Where things live: each program under services/ uses shared/ and itself, never another
program (the admin API uses the dead-letter library, not bookingctl), and shared/ uses no
program; a module's name says what it is, so one name is not two different things."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Names every program (or package) has, each the same kind of thing wherever it is.
CONVENTIONS = {"__init__", "__main__", "settings", "handlers", "errors", "bootstrap", "process"}


def imported(path: Path) -> set[str]:
    """The absolute module names a file imports, anywhere in it (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def foreign(folder: Path, allowed: str | None) -> dict[str, set[str]]:
    """Per file under folder, the modules of services/ it imports other than ``allowed``."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        programs = {n for n in imported(path) if n == "services" or n.startswith("services.")}
        if allowed is not None:
            programs = {n for n in programs if n.split(".")[:2] != ["services", allowed]}
        if programs:
            found[str(path.relative_to(ROOT))] = programs
    return found


def test_no_program_imports_another_so_the_admin_api_uses_the_dead_letter_library() -> None:
    programs = [p for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists()]
    assert {"booking", "bookingctl", "email"} <= {p.name for p in programs}
    for program in programs:
        assert foreign(program, program.name) == {}, program.name


def test_the_shared_code_imports_no_program() -> None:
    assert foreign(ROOT / "shared", None) == {}
    assert (ROOT / "shared" / "deadletters" / "operations.py").exists()


def programs() -> list[Path]:
    """Each services/<name>/, plus the benchmarks and the local runner: what runs."""
    found = [p for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists()]
    return [*found, ROOT / "bench", ROOT / "devrun"]


def module_names(folder: Path) -> list[str]:
    names = (p.stem for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    return [name for name in names if name not in CONVENTIONS]


def test_within_a_program_or_the_shared_code_each_module_name_is_used_once() -> None:
    for folder in [*programs(), ROOT / "shared"]:
        twice = {n for n, count in Counter(module_names(folder)).items() if count > 1}
        assert not twice, f"{folder.relative_to(ROOT)}: {twice}"


def test_no_two_programs_have_a_module_of_the_same_name() -> None:
    # shared/ is left out: a program's module may be named like the library module it fronts
    # (the booking API's api/asyncapi.py serves shared/messaging/asyncapi.py's document).
    owners: dict[str, set[str]] = {}
    for folder in programs():
        for name in module_names(folder):
            owners.setdefault(name, set()).add(folder.name)
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}
