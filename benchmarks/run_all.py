"""Run every ``benchmarks/bench_*.py`` in turn (``make bench``); each writes its own results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.name)
if failed:
    print("failed: " + ", ".join(failed))
    sys.exit(1)
