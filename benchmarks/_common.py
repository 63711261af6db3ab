"""Benchmark conventions: each benchmark writes ``results/<topic>.json`` and ``results/<topic>.md``.

Speed targets are ratios measured in the same run (these machines are noisy), never timed tests.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avseld.atomic import write_json_atomic, write_text_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """A short description of where the benchmark ran."""
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
    }


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_result(topic: str, rows: list[dict], notes: str = "") -> Path:
    """Write ``results/<topic>.json`` (rows, notes, machine) and ``results/<topic>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / f"{topic}.json", {"topic": topic, "machine": machine(), "notes": notes, "rows": rows})
    md = f"# {topic}\n\n{notes}\n\n" + markdown_table(rows)
    write_text_atomic(RESULTS / f"{topic}.md", md)
    return RESULTS / f"{topic}.md"
