"""The package keeps its layers: PySide6 only under gui/, and nothing imports upward."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "backstory_desktop"

# Which top-level parts each part may import (besides itself and the shared core).
ALLOWED_IMPORTS = {
    "core": set(),
    "sources": {"core"},
    "store": {"core"},
    "salesforce": {"core", "store"},
    "sync": {"core", "salesforce", "store", "sources"},
    "practice_org": {"core", "sources", "bundled"},
}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files_outside_gui() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if "gui" not in path.relative_to(PACKAGE).parts]


def test_layers__pyside6_is_imported_only_under_gui() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in _python_files_outside_gui()
        if any(name.split(".")[0] in ("PySide6", "shiboken6") for name in _imported_modules(path))
    ]
    assert offenders == []


def test_layers__no_part_imports_a_part_above_it() -> None:
    offenders = []
    for part, allowed in ALLOWED_IMPORTS.items():
        for path in (PACKAGE / part).rglob("*.py"):
            for name in _imported_modules(path):
                pieces = name.split(".")
                if pieces[0] != "backstory_desktop" or len(pieces) < 2:
                    continue
                target = pieces[1]
                if target != part and target not in allowed:
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_layers__the_check_sees_pyside6_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from PySide6.QtCore import QObject\nimport PySide6.QtWidgets\n", encoding="utf-8"
    )
    assert {"PySide6.QtCore", "PySide6.QtWidgets"} <= _imported_modules(sample)
