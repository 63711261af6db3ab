"""`torchrun --nproc_per_node=2` (gloo, CPU) trains the same parameters as one process on the same global batch.

BatchNorm normalises with the statistics of the batch each process sees, so DDP over 2 ranks is not
the same computation as one process on the whole batch. The single-process reference therefore
uses ``train.accumulate=2``: each global batch is split into the same two halves the ranks get
(elements 0, 2, 4, ... and 1, 3, 5, ...), each half is forwarded with its own BatchNorm statistics,
and the gradients are averaged before one optimizer step, exactly what DDP computes. Dropout is
off (rank RNG streams differ by design) and plain SGD is used so that float-rounding differences in
the gradient average stay at rounding level (Adam's first step is sign-like and would amplify them
for parameters with ~0 gradient). BatchNorm running statistics are not compared: DDP keeps rank
0's, the reference has updated them from both halves.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from avseld.checkpoint import load_checkpoint
from avseld.models import build_model

from engine_fixtures import make_dataset

REPO = Path(__file__).resolve().parents[1]
OVERRIDES = {"train.epochs": 2, "train.batch_size": 8, "train.optimizer": "sgd", "train.lr": 0.05,
             "model.dropout": 0.0, "data.val_fraction": 0.0, "train.tensorboard": False, "train.device": "cpu"}

CHILD = """
import json, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from avseld.config import load_config
from avseld import engine
tmp = Path({tmp!r})
cfg = load_config("smoke", json.loads({over!r}))
engine.train(cfg, "baseline_audio", 0, tmp / "data", tmp / "cache", tmp / "runs", run_id={run_id!r})
"""


def _run(tmp: Path, run_id: str, overrides: dict, nproc: int) -> Path:
    code = CHILD.format(tmp=str(tmp), over=json.dumps(overrides), run_id=run_id)
    script = tmp / f"{run_id}.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script)]
    else:
        cmd = [sys.executable, str(script)]
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp / "runs" / run_id


def test_torchrun_two_processes_equal_single_process(tmp_path):
    make_dataset(tmp_path, n_train_rooms=2, clips_per_room=8, overrides=OVERRIDES)  # 16 clips: 2 steps/epoch
    ddp = _run(tmp_path, "ddp", OVERRIDES, nproc=2)
    single = _run(tmp_path, "single", {**OVERRIDES, "train.accumulate": 2}, nproc=1)
    a = load_checkpoint(ddp / "checkpoints" / "last.pt")
    b = load_checkpoint(single / "checkpoints" / "last.pt")
    assert a["world_size"] == 2 and b["world_size"] == 1 and a["global_step"] == b["global_step"] == 4
    torch.manual_seed(0)  # the engine seeds with the run seed before building the model
    init = build_model("baseline_audio", dropout=0.0).state_dict()
    params = [n for n, _ in build_model("baseline_audio").named_parameters()]
    moved = 0.0
    for n in params:
        torch.testing.assert_close(a["model_state"][n], b["model_state"][n], atol=1e-6, rtol=0, msg=n)
        moved = max(moved, (a["model_state"][n] - init[n]).abs().max().item())
    assert moved > 1e-4  # training really changed the weights
    # rank 0 alone logged and predicted
    assert len((ddp / "log.jsonl").read_text().splitlines()) == 2
    assert (ddp / "metrics.json").is_file()
