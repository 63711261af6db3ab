"""The training recipe's pieces: warm-up + cosine schedule, input standardisation from the cached
training split (stored with the cache, carried by the checkpoint), gradient clipping, AdamW."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avseld import engine
from avseld.cache import audio_stats, feature_cache_dir
from avseld.config import load_config
from avseld.models import build_model

sys.path.insert(0, str(Path(__file__).parent))
from engine_fixtures import make_dataset  # noqa: E402

torch.set_num_threads(1)


def test_warmup_cosine_rises_linearly_then_decays_to_the_final_ratio():
    total, frac, final = 100, 0.1, 0.01
    f = [engine.warmup_cosine_factor(s, total, frac, final) for s in range(total)]
    assert f[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])  # 10 warm-up steps, peak at step 9
    assert f[10] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(final)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # non-increasing after the warm-up
    mid = 10 + (total - 10 - 1) // 2
    assert f[mid] == pytest.approx(final + (1 - final) * 0.5 * (1 + math.cos(math.pi * (mid - 10) / 89)))


def test_audio_stats_are_the_training_splits_mean_and_std_and_are_stored(tmp_path):
    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=2, clips_per_room=3)
    cdir = feature_cache_dir(cfg, cache)
    a = np.load(cdir / "dev-train-fake" / "audio.npy").astype(np.float64)  # (N, C, T, F)
    mean, std = audio_stats(cdir, ("dev-train",))
    assert mean.shape == std.shape == (a.shape[1], a.shape[3])
    np.testing.assert_allclose(mean, a.mean(axis=(0, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, a.std(axis=(0, 2)), rtol=1e-4, atol=1e-5)
    stored = list(cdir.glob("audio_stats_*.npz"))
    assert [p.name for p in stored] == ["audio_stats_dev-train-fake.npz"]
    test = np.load(cdir / "dev-test-fake" / "audio.npy").astype(np.float64)
    assert not np.allclose(mean, test.mean(axis=(0, 2)))  # the test split is not in the statistics
    m2, s2 = audio_stats(cdir, ("dev-train",))  # read back from the file
    assert np.array_equal(m2, mean) and np.array_equal(s2, std)


@pytest.mark.parametrize("name", ["baseline_av", "avseld"])
def test_input_norm_equals_feeding_standardised_features(name):
    torch.manual_seed(0)
    plain = build_model(name, visual_shape=(9,)).eval()
    normed = build_model(name, visual_shape=(9,), input_norm=True).eval()
    missing = normed.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing.missing_keys) == ["encoder.in_mean", "encoder.in_std"]
    mean = torch.randn(2, 64) * 10 - 50
    std = torch.rand(2, 64) * 5 + 5
    normed.encoder.set_input_stats(mean.numpy(), std.numpy())
    audio = torch.randn(3, 2, 251, 64) * 8 - 50
    video = torch.randn(3, 50, 9)
    with torch.no_grad():
        a = normed(audio, video)
        b = plain((audio - mean[:, None, :]) / std[:, None, :], video)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="positive std"):
        normed.encoder.set_input_stats(mean.numpy(), np.zeros((2, 64)))


def test_recipe_run_standardises_with_the_cache_statistics_and_follows_the_schedule(tmp_path):
    over = {"train.epochs": 3, "train.batch_size": 4, "data.val_fraction": 0.34, "train.standardize": True,
            "train.scheduler": "warmup_cosine", "train.warmup_frac": 0.25, "train.lr": 2e-3,
            "train.optimizer": "adamw", "train.weight_decay": 0.01, "train.grad_clip": 1.0}
    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=3, clips_per_room=4, overrides=over)
    run = engine.train(cfg, "baseline_av", 0, data, cache, tmp_path / "runs")
    model = engine.load_model(run)
    mean, std = audio_stats(feature_cache_dir(cfg, cache), ("dev-train",))
    assert np.array_equal(model.encoder.in_mean.squeeze(1).numpy(), mean)  # restored from the checkpoint
    assert np.array_equal(model.encoder.in_std.squeeze(1).numpy(), std)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    steps = log[0]["step"]  # 8 training clips / 4 = 2 steps per epoch, 6 in all, 2 warm-up steps
    assert steps == 2
    total = 3 * steps
    # the logged lr is the one after the epoch's last step, i.e. the factor of the next step
    for r in log[:-1]:
        assert r["lr"] == pytest.approx(2e-3 * engine.warmup_cosine_factor(r["step"], total, 0.25, 0.01))
    record = json.loads((run / "metrics.json").read_text())
    prov = record["provenance"]
    env = prov["environment"]
    assert env["packages"]["torch"].startswith("2.14.1") and env["cpu_model"] and env["torch_cpu_capability"]
    assert set(prov["git"]) == {"commit", "dirty"}
    cdir = feature_cache_dir(cfg, cache)
    assert prov["cache"]["key"] == cdir.name
    from avseld.provenance import file_digest

    assert prov["cache"]["splits"]["dev-train-fake"]["audio.npy"] == file_digest(cdir / "dev-train-fake" / "audio.npy")
    assert set(prov["cache"]["splits"]) == {"dev-train-fake", "dev-test-fake"}


def test_grad_clip_bounds_the_update_of_plain_sgd(tmp_path):
    """With SGD an update is lr x gradient, so clipping at c bounds the parameter change's norm by lr x c."""
    over = {"train.epochs": 1, "train.batch_size": 8, "data.val_fraction": 0.0, "train.optimizer": "sgd",
            "train.lr": 1.0, "train.cpu_bf16": False}
    changes = {}
    for clip in (0.0, 1e-3):
        cfg, data, cache = make_dataset(tmp_path / str(clip), n_train_rooms=2, clips_per_room=4,
                                        overrides={**over, "train.grad_clip": clip})
        torch.manual_seed(0)
        init = build_model("baseline_audio", visual_shape=None)
        run = engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / str(clip) / "runs")
        trained = engine.load_model(run, "last")
        init_state = init.state_dict()
        d2 = sum(float(((v.float() - init_state[k].float()) ** 2).sum())
                 for k, v in trained.state_dict().items() if v.dtype.is_floating_point and "running" not in k)
        changes[clip] = math.sqrt(d2)
    assert changes[1e-3] <= 1.0 * 1e-3 * 1.01  # one step of at most lr x c
    assert changes[0.0] > 10 * changes[1e-3]
