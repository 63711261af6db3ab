"""Checkpoints: weights-only and self-describing; another model's or a pickled one is refused."""

from pathlib import Path

import pytest
import torch

from avseld import inference
from avseld.checkpoint import load_checkpoint, load_model_state
from avseld.errors import CheckpointError
from avseld.models import build_model


def test_checkpoints_are_safe(overfit_run, tmp_path, capsys):
    from avseld.cli import main

    run, _ = overfit_run
    ckpt = torch.load(run / "checkpoints" / "best.pt", weights_only=True)  # plain tensors and containers
    assert ckpt["model_name"] == "baseline_audio" and "versions" in ckpt
    model = inference.load_model(run)
    assert model.model_name == "baseline_audio"
    # a checkpoint of another model is refused, naming the file
    with pytest.raises(CheckpointError, match="is for model 'baseline_audio', not 'avseld_audio'"):
        load_model_state(build_model("avseld_audio"), ckpt, run / "checkpoints" / "best.pt")
    # a checkpoint carrying a pickled object is refused by the loader and by the CLI (exit 2, no traceback)
    evil = tmp_path / "run"
    (evil / "checkpoints").mkdir(parents=True)
    (evil / "config.yaml").write_text((run / "config.yaml").read_text())
    torch.save(dict(ckpt, payload=Path("/etc/passwd")), evil / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(evil / "checkpoints" / "best.pt")
    assert main(["predict", "--run", str(evil)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pickled" in err and "Traceback" not in err
    (evil / "checkpoints" / "best.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(evil / "checkpoints" / "best.pt")
