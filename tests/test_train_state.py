"""Train state: what ``last.pt`` holds restores optimizer, schedule, counters and RNG exactly."""

import math

import pytest
import torch

from avseld.checkpoint import load_checkpoint
from avseld.config import load_config
from avseld.errors import CheckpointError, ConfigError
from avseld.models import build_model
from avseld.train_state import TrainState

torch.set_num_threads(1)
CPU = torch.device("cpu")
SMALL = {"n_filters": 8, "rnn_hidden": 16, "n_mhsa_heads": 2, "fnn_size": 16}  # a fast model, dropout kept


def _steps(model, state, n, tc):
    for _ in range(n):
        state.optimizer.zero_grad(set_to_none=True)
        x = torch.randn(2, 2, 251, 64)
        model(x, None).pow(2).mean().backward()
        state.optimizer_step(model, tc.grad_clip)
    state.end_epoch()


def test_last_checkpoint_restores_the_state_exactly(tmp_path):
    tc = load_config("smoke", {"train.scheduler": "warmup_cosine", "train.epochs": 3, "train.grad_clip": 1.0}).train
    torch.manual_seed(0)
    model = build_model("baseline_audio", **SMALL)
    state = TrainState.build(model, tc, steps_per_epoch=2, device=CPU, use_amp=False)
    _steps(model, state, 2, tc)
    assert (state.epoch, state.global_step, state.best_epoch) == (1, 2, 0) and state.best_score == -math.inf
    assert state.select(0.25) and not state.select(0.2) and state.select(0.25)  # ties go to the later epoch
    state.save(tmp_path / "best.pt", tmp_path / "last.pt", model, True, CPU, {"seed": 0}, 1)

    twin = build_model("baseline_audio", **SMALL)
    restored = TrainState.build(twin, tc, steps_per_epoch=2, device=CPU, use_amp=False)
    restored.restore(twin, load_checkpoint(tmp_path / "last.pt"), tmp_path / "last.pt", CPU)
    assert (restored.epoch, restored.global_step, restored.best_score, restored.best_epoch) == (1, 2, 0.25, 1)
    assert restored.scheduler.state_dict() == state.scheduler.state_dict()
    # the same next epoch from both: same weights
    rng = torch.get_rng_state()
    _steps(model, state, 2, tc)
    torch.set_rng_state(rng)
    _steps(twin, restored, 2, tc)
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), k


def test_weight_average_is_the_exponential_moving_average_of_the_steps(tmp_path):
    """avg_1 = w_1, avg_k = d * avg_(k-1) + (1 - d) * w_k over the weights after each optimizer step,
    BatchNorm statistics included; best.pt holds the average, last.pt the raw weights and the average."""
    d = 0.9
    tc = load_config("smoke", {"train.ema_decay": d, "train.optimizer": "sgd", "train.lr": 0.05}).train
    torch.manual_seed(0)
    model = build_model("baseline_audio", **SMALL)
    state = TrainState.build(model, tc, steps_per_epoch=3, device=CPU, use_amp=False)
    expected = None
    for _ in range(3):
        _steps(model, state, 1, tc)
        now = {k: v.detach().clone().double() for k, v in model.state_dict().items() if v.is_floating_point()}
        expected = now if expected is None else {k: d * expected[k] + (1 - d) * now[k] for k in now}
    avg = state.evaluated(model).state_dict()
    assert state.evaluated(model) is not model
    for k, v in expected.items():
        assert torch.allclose(avg[k].double(), v, rtol=1e-5, atol=1e-6), k
    moved = [k for k, v in expected.items() if not torch.allclose(model.state_dict()[k].double(), v, atol=1e-6)]
    assert any("running_mean" in k for k in moved) and len(moved) > len(expected) // 2  # the average lags the weights

    state.save(tmp_path / "best.pt", tmp_path / "last.pt", model, True, CPU, {"seed": 0}, 1)
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    for k in moved:
        assert torch.equal(best["model_state"][k], avg[k]) and torch.equal(last["model_state"][k], model.state_dict()[k])
    twin = build_model("baseline_audio", **SMALL)
    restored = TrainState.build(twin, tc, steps_per_epoch=3, device=CPU, use_amp=False)
    restored.restore(twin, last, tmp_path / "last.pt", CPU)
    for k, v in avg.items():
        assert torch.equal(restored.evaluated(twin).state_dict()[k], v), k


def test_resume_refuses_a_checkpoint_of_the_other_averaging_setting(tmp_path):
    tc_off = load_config("smoke").train
    tc_on = load_config("smoke", {"train.ema_decay": 0.99}).train
    model = build_model("baseline_audio", **SMALL)
    TrainState.build(model, tc_off, 2, CPU, False).save(tmp_path / "b.pt", tmp_path / "last.pt", model, True, CPU, {}, 1)
    with pytest.raises(CheckpointError, match=r"last\.pt.*train\.ema_decay"):
        TrainState.build(model, tc_on, 2, CPU, False).restore(model, load_checkpoint(tmp_path / "last.pt"),
                                                              tmp_path / "last.pt", CPU)
    with pytest.raises(ConfigError, match="train.ema_decay"):
        TrainState.build(model, load_config("smoke", {"train.ema_decay": 1.0}).train, 2, CPU, False)
