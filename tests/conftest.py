"""Fixtures shared by several test files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI installs a stderr handler on the ``avseld`` logger; drop it after each test (capsys closes
    that stream)."""
    import logging

    root = logging.getLogger("avseld")
    before = list(root.handlers)
    yield
    for h in root.handlers[:]:
        if h not in before:
            root.removeHandler(h)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each device a test should pass on: the CPU, and CUDA when this machine has it."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def overfit_run(tmp_path_factory):
    """baseline_audio trained on 4 clips whose features carry the labels; dev-test = those clips;
    ``(run folder, data root)`` (test_engine's learning checks and test_checkpoint read the same run)."""
    from avseld import engine
    from engine_fixtures import make_dataset

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("overfit")
    cfg, data, cache = make_dataset(tmp, n_train_rooms=1, clips_per_room=4, copies=2, test_is_train=True,
                                    overrides={"data.val_fraction": 0.0, "train.epochs": 20,
                                               "train.batch_size": 4, "train.lr": 3e-3, "train.tensorboard": True,
                                               # the baseline's recipe (constant rate, raw log-mel), not smoke's
                                               "train.scheduler": "none", "train.standardize": False})
    run = engine.train(cfg, "baseline_audio", 0, data, cache, tmp / "runs")
    return run, data


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory):
    """``avseld reproduce --profile smoke`` into a temporary workdir, once per session (the study checks of
    test_reproduce.py and the browser test of test_browser.py read it); ``(workdir, stderr)``."""
    workdir = tmp_path_factory.mktemp("smoke_study")
    proc = subprocess.run([sys.executable, "-m", "avseld", "reproduce", "--profile", "smoke", "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc.stderr
