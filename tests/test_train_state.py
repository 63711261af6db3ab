"""Train state: what ``last.pt`` holds restores optimizer, schedule, counters and RNG exactly."""

import math

import torch

from avseld.checkpoint import load_checkpoint
from avseld.config import load_config
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
        state.optimizer_step(model.parameters(), tc.grad_clip)
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
