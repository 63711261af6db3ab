"""Training engine: learning, predictions that `evaluate` scores to metrics.json,
exact resume (also after SIGKILL), and the non-finite-loss stop."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from avseld import engine
from avseld.checkpoint import load_checkpoint
from avseld.errors import ConfigError

from engine_fixtures import make_dataset

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
KEYS = ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")


def test_model_overfits_four_clips(overfit_run):
    run, _ = overfit_run
    m = json.loads((run / "metrics.json").read_text())
    assert m["F20"] >= 0.9, m
    assert m["DOAE"] < 10
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 21))
    assert log[-1]["train_loss"] < 0.2 * log[0]["train_loss"]
    assert any((run / "tensorboard").iterdir())


def test_predictions_score_to_metrics_json(overfit_run, capsys):
    from avseld.cli import main
    from avseld.metrics import evaluate_folders

    run, data = overfit_run
    m = json.loads((run / "metrics.json").read_text())
    assert set(KEYS) <= set(m) and len(m["classwise"]) == 13
    assert {"git_commit", "versions", "seed", "device", "train_wall_s"} <= set(m["provenance"])
    scored = evaluate_folders(m["ref_dir"], m["pred_dir"])
    for k in KEYS:
        assert scored[k] == pytest.approx(m[k], nan_ok=True, abs=1e-12), k
    assert main(["evaluate", "--ref", m["ref_dir"], "--pred", m["pred_dir"], "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["F20"] == pytest.approx(m["F20"])


# ---- exact resume ------------------------------------------------------------------------------

RESUME_OVERRIDES = {"train.epochs": 3, "train.batch_size": 4, "train.scheduler": "cosine", "train.lr_swap": True,
                    "train.ema_decay": 0.8, "data.val_fraction": 0.34}


def _resume_data(tmp):
    return make_dataset(tmp, n_train_rooms=3, clips_per_room=4, overrides=RESUME_OVERRIDES)


def _state(run: Path) -> dict:
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    for r in log:
        r.pop("epoch_time_s")
    metrics = json.loads((run / "metrics.json").read_text())
    for k in ("provenance", "ref_dir", "pred_dir", "run_id"):
        metrics.pop(k)
    return {"last": last, "best": best, "log": log, "metrics": metrics}


def _assert_identical(a: dict, b: dict) -> None:
    for which in ("last", "best"):
        for k, v in a[which]["model_state"].items():
            assert torch.equal(v, b[which]["model_state"][k]), (which, k)
    sa, sb = a["last"]["optimizer_state"]["state"], b["last"]["optimizer_state"]["state"]
    for k in sa:
        for name in sa[k]:
            assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name]))
    assert a["last"]["scheduler_state"] == b["last"]["scheduler_state"]
    for k, v in a["last"]["average_state"].items():
        assert torch.equal(v, b["last"]["average_state"][k]), ("average", k)
    assert a["log"] == b["log"]
    assert a["metrics"] == b["metrics"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    cfg, data, cache = _resume_data(tmp)
    run = engine.train(cfg, "baseline_av", 0, data, cache, tmp / "runs")
    return _state(run)


class _Stop(Exception):
    pass


def test_resume_after_epoch_k_is_bit_identical(uninterrupted, tmp_path, monkeypatch):
    cfg, data, cache = _resume_data(tmp_path)
    real = engine.train_one_epoch

    def stop_before_epoch_three(net, data, state, *args):  # interrupted once epoch 2 is checkpointed
        if state.epoch == 2:
            raise _Stop
        return real(net, data, state, *args)

    monkeypatch.setattr(engine, "train_one_epoch", stop_before_epoch_three)
    with pytest.raises(_Stop):
        engine.train(cfg, "baseline_av", 0, data, cache, tmp_path / "runs", run_id="r")
    monkeypatch.setattr(engine, "train_one_epoch", real)
    assert load_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "last.pt")["epoch"] == 2
    assert not (tmp_path / "runs" / "r" / "metrics.json").exists()
    with pytest.raises(ConfigError, match="--resume"):
        engine.train(cfg, "baseline_av", 0, data, cache, tmp_path / "runs", run_id="r")
    run = engine.train(cfg, "baseline_av", 0, data, cache, tmp_path / "runs", run_id="r", resume=True)
    _assert_identical(_state(run), uninterrupted)


CHILD = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from engine_fixtures import make_dataset
from avseld import engine
from pathlib import Path
import json
cfg, data, cache = make_dataset(Path({tmp!r}), n_train_rooms=3, clips_per_room=4, overrides=json.loads({over!r}))
engine.train(cfg, "baseline_av", 0, data, cache, Path({tmp!r}) / "runs", run_id="k", resume={resume})
"""


def test_sigkill_then_resume_matches_uninterrupted(uninterrupted, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = CHILD.format(tests=str(Path(__file__).parent), tmp=str(tmp_path), over=json.dumps(RESUME_OVERRIDES), resume=False)
    child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, stderr=subprocess.PIPE)
    last = tmp_path / "runs" / "k" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if last.is_file():  # killed during epoch 2 (or while writing its checkpoint)
            break
        time.sleep(0.02)
    assert child.poll() is None, child.stderr.read().decode()[-2000:]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (tmp_path / "runs" / "k" / "metrics.json").exists()
    code = CHILD.format(tests=str(Path(__file__).parent), tmp=str(tmp_path), over=json.dumps(RESUME_OVERRIDES), resume=True)
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, capture_output=True)
    _assert_identical(_state(tmp_path / "runs" / "k"), uninterrupted)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from avseld.losses import ADPITLoss

    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=2, clips_per_room=4,
                                    overrides={"train.epochs": 3, "train.batch_size": 2, "data.val_fraction": 0.5})
    real = ADPITLoss.forward
    calls = {"n": 0}

    def poisoned(self, output, target):  # 2 training steps per epoch: the 4th is epoch 2, step 2
        calls["n"] += output.requires_grad  # validation calls do not count
        loss = real(self, output, target)
        return loss * float("nan") if output.requires_grad and calls["n"] == 4 else loss

    monkeypatch.setattr(ADPITLoss, "forward", poisoned)
    with pytest.raises(engine.NonFiniteLossError, match=r"epoch 2, step 2 .*last good checkpoint"):
        engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / "runs", run_id="nan")
    last = load_checkpoint(tmp_path / "runs" / "nan" / "checkpoints" / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model_state"].values() if v.is_floating_point())


def test_interrupted_feature_cache_is_finished_before_training(tmp_path, monkeypatch):
    """A cache folder holding only some splits (an interrupted extraction) is completed, not trusted."""
    import shutil

    import avseld.cache

    cfg, data, cache = make_dataset(tmp_path, overrides={"train.epochs": 1})
    cache_dir = avseld.cache.feature_cache_dir(cfg, cache)
    calls = []
    monkeypatch.setattr(avseld.cache, "build_feature_cache", lambda c, d, r: calls.append(d) or cache_dir)
    splits = (*cfg.data.train_splits, *cfg.data.test_splits)
    assert avseld.cache.ensure_feature_cache(cfg, data, cache, need=splits) == cache_dir and calls == []  # complete
    train_split = next(s for s in avseld.cache.list_cached_splits(cache_dir) if s.startswith("dev-train"))
    shutil.move(cache_dir / train_split, tmp_path / "aside")

    def finish(c, d, r):  # the "extraction" puts the missing split back
        calls.append(d)
        shutil.move(tmp_path / "aside", cache_dir / train_split)
        return cache_dir

    monkeypatch.setattr(avseld.cache, "build_feature_cache", finish)
    run = engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / "runs")
    assert calls == [data] and (run / "metrics.json").is_file()  # the train split was missing: extraction resumed
