"""Where things live, as the imports show it: each program under services/ uses shared/ and
itself, never another program (the admin API uses the dead-letter library, not bookingctl),
and shared/ uses no program."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
