"""Fixtures shared by several test files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """``avseld reproduce --profile smoke`` into a temporary workdir, once per session (the study checks of
    test_reproduce.py and the browser test of test_browser.py read it); ``(workdir, stderr)``."""
    workdir = tmp_path_factory.mktemp("smoke_study")
    proc = subprocess.run([sys.executable, "-m", "avseld", "reproduce", "--profile", "smoke", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc.stderr
