"""Result files of one benchmark: its figures as JSON and its table as Markdown.

Each benchmark runs as a script from this folder, so Python finds this module
beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The exit status of a benchmark that ran and wrote its figures but missed a target. Python
# exits with 1 after an uncaught exception and argparse with 2 after a usage error, so any
# status but 0 and this one means the benchmark failed.
TARGET_MISSED = 3


def exit_status(met: bool) -> int:
    """Return 0 when the benchmark met its targets, else TARGET_MISSED."""
    return 0 if met else TARGET_MISSED


def write_tables(folder: Path, name: str, figures: dict[str, Any], table: str) -> None:
    """Write ``figures`` as ``NAME.json`` and ``table`` as ``NAME.md`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(table, encoding="utf-8")
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
