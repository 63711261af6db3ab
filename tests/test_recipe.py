"""The training recipe's pieces: warm-up + cosine schedule, input standardisation from the cached
training split (stored with the cache, carried by the checkpoint), gradient clipping, AdamW."""

import json
import math

import numpy as np
import pytest
import torch

from avseld import engine, inference
from avseld.cache import audio_stats, feature_cache_dir
from avseld.models import build_model
from avseld.runs import TUNED_THRESHOLD
from avseld.train_state import warmup_cosine_factor

from engine_fixtures import make_dataset

torch.set_num_threads(1)


def test_warmup_cosine_rises_linearly_then_decays_to_the_final_ratio():
    total, frac, final = 100, 0.1, 0.01
    f = [warmup_cosine_factor(s, total, frac, final) for s in range(total)]
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
    model = inference.load_model(run)
    mean, std = audio_stats(feature_cache_dir(cfg, cache), ("dev-train",))
    assert np.array_equal(model.encoder.in_mean.squeeze(1).numpy(), mean)  # restored from the checkpoint
    assert np.array_equal(model.encoder.in_std.squeeze(1).numpy(), std)
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    steps = log[0]["step"]  # 8 training clips / 4 = 2 steps per epoch, 6 in all, 2 warm-up steps
    assert steps == 2
    total = 3 * steps
    # the logged lr is the one after the epoch's last step, i.e. the factor of the next step
    for r in log[:-1]:
        assert r["lr"] == pytest.approx(2e-3 * warmup_cosine_factor(r["step"], total, 0.25, 0.01))
    record = json.loads((run / "metrics.json").read_text())
    prov = record["provenance"]
    env = prov["environment"]
    assert env["packages"]["torch"].startswith("2.14.1") and env["cpu_model"] and env["torch_cpu_capability"]
    assert set(prov["git"]) == {"commit", "dirty"}
    assert prov["git_commit"] == prov["git"]["commit"] + ("-dirty" if prov["git"]["dirty"] else "")  # one read
    cdir = feature_cache_dir(cfg, cache)
    assert prov["cache"]["key"] == cdir.name
    from avseld.provenance import file_digest

    assert prov["cache"]["splits"]["dev-train-fake"]["audio.npy"] == file_digest(cdir / "dev-train-fake" / "audio.npy")
    assert set(prov["cache"]["splits"]) == {"dev-train-fake", "dev-test-fake"}


def test_grad_clip_bounds_the_update_of_plain_sgd(tmp_path):
    """With SGD an update is lr x gradient, so clipping at c bounds the parameter change's norm by lr x c."""
    over = {"train.epochs": 1, "train.batch_size": 8, "data.val_fraction": 0.0, "train.optimizer": "sgd",
            "train.lr": 1.0, "train.cpu_bf16": False, "train.standardize": False, "train.scheduler": "none"}
    changes = {}
    for clip in (0.0, 1e-3):
        cfg, data, cache = make_dataset(tmp_path / str(clip), n_train_rooms=2, clips_per_room=4,
                                        overrides={**over, "train.grad_clip": clip})
        torch.manual_seed(0)
        init = build_model("baseline_audio", visual_shape=None)
        run = engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / str(clip) / "runs")
        trained = inference.load_model(run, "last")
        init_state = init.state_dict()
        d2 = sum(float(((v.float() - init_state[k].float()) ** 2).sum())
                 for k, v in trained.state_dict().items() if v.dtype.is_floating_point and "running" not in k)
        changes[clip] = math.sqrt(d2)
    assert changes[1e-3] <= 1.0 * 1e-3 * 1.01  # one step of at most lr x c
    assert changes[0.0] > 10 * changes[1e-3]


def test_level_difference_channel_is_left_minus_right_with_its_own_statistics(tmp_path):
    from avseld.models.blocks import ConvEncoder

    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=2, clips_per_room=3)
    cdir = feature_cache_dir(cfg, cache)
    a = np.load(cdir / "dev-train-fake" / "audio.npy").astype(np.float64)
    mean, std = audio_stats(cdir, ("dev-train",), level_difference=True)
    diff = a[:, 0] - a[:, 1]
    assert mean.shape == (3, a.shape[3])
    np.testing.assert_allclose(mean[2], diff.mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std[2], diff.std(axis=(0, 1)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean[:2], audio_stats(cdir, ("dev-train",))[0])  # a file of its own
    # the encoder sees [L, R, L - R]: with identity statistics its first conv on (L, R, L-R) equals a conv
    # on (L, R) whose weights absorb the third channel
    torch.manual_seed(0)
    enc = ConvEncoder(2, 64, level_difference=True).eval()
    plain = ConvEncoder(2, 64).eval()
    plain.load_state_dict({k: v for k, v in enc.state_dict().items() if k != "blocks.0.conv.weight"}, strict=False)
    w = enc.blocks[0].conv.weight.detach()
    with torch.no_grad():
        plain.blocks[0].conv.weight.copy_(torch.stack([w[:, 0] + w[:, 2], w[:, 1] - w[:, 2]], dim=1))
        x = torch.randn(2, 2, 251, 64) * 10 - 40
        torch.testing.assert_close(enc(x), plain(x), rtol=1e-4, atol=1e-4)


def test_video_dropout_zeroes_whole_clips_in_training_only():
    from avseld.models.avseld_net import AVSELDNet

    torch.manual_seed(0)
    kw = dict(visual_shape=(9,), dropout=0.0, atem_dropout=0.0, vfem_dropout=0.0, fusion_dropout=0.0)
    model = AVSELDNet(video_dropout=0.5, **kw)
    audio, video = torch.randn(16, 2, 251, 64), torch.randn(16, 50, 9)
    model.eval()
    with torch.no_grad():
        own, blind = model(audio, video), model(audio, torch.zeros_like(video))
        model.train()  # BatchNorm sees only the audio: batch statistics are the same in both passes
        torch.manual_seed(1)
        mixed = model(audio, video)
        model.eval()
    model.train()
    with torch.no_grad():
        model.video_dropout = 0.0
        train_own = model(audio, video)
        train_blind = model(audio, torch.zeros_like(video))
    dropped = [torch.allclose(mixed[i], train_blind[i], atol=1e-6) for i in range(16)]
    kept = [torch.allclose(mixed[i], train_own[i], atol=1e-6) for i in range(16)]
    assert all(d != k for d, k in zip(dropped, kept))  # every clip is either fully seen or fully blind
    assert 3 <= sum(dropped) <= 13
    assert not torch.allclose(own, blind)  # the picture does change the outputs
    with pytest.raises(ValueError, match="video_dropout"):
        AVSELDNet(video_dropout=1.0, **kw)


def test_tuned_onscreen_threshold_is_chosen_on_validation_and_used_by_predict(tmp_path):
    over = {"train.epochs": 2, "train.batch_size": 4, "data.val_fraction": 0.34, "eval.onscreen_decision": "threshold",
            "eval.tune_onscreen_threshold": True}
    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=3, clips_per_room=4, overrides=over)
    run = engine.train(cfg, "avseld", 0, data, cache, tmp_path / "runs")
    tuned = json.loads((run / TUNED_THRESHOLD).read_text())
    scores = {float(k): v for k, v in tuned["val_F20_on"].items()}
    assert set(scores) == set(inference.ONSCREEN_THRESHOLDS)
    assert scores[tuned["threshold"]] == max(scores.values())
    record = json.loads((run / "metrics.json").read_text())
    assert record["onscreen_threshold"] == tuned["threshold"]
    # the written on-screen flags are those of the tuned threshold: re-decode the outputs by hand
    from avseld.batches import load_clip_arrays
    from avseld.decode import decode_output
    from dataclasses import replace

    model = inference.load_model(run)
    arrays = load_clip_arrays(feature_cache_dir(cfg, cache), "dev-test")
    out = inference.predict_outputs(model, arrays, torch.device("cpu"))
    from avseld.dataset import read_label_csv

    ecfg = replace(cfg.eval, onscreen_threshold=tuned["threshold"])
    for name, o in zip(arrays.clip_names, out):
        written = read_label_csv(run / "predictions" / "dev-test" / f"{name}.csv", reference=False)
        np.testing.assert_array_equal(written[:, 5], decode_output(o, ecfg, layout=model.layout)[:, 5])


def test_distance_scale_reaches_the_training_loss(tmp_path):
    """train.distance_scale_m is the loss the engine trains with: the same seed and data, with distance in
    2-m units, logs a smaller first-epoch loss (the distance term weighs a quarter)."""
    over = {"train.epochs": 1, "train.batch_size": 4, "data.val_fraction": 0.34}
    cfg, data, cache = make_dataset(tmp_path, n_train_rooms=3, clips_per_room=4, overrides=over)
    runs = {}
    for scale in (1.0, 2.0):
        c = cfg.with_overrides({"train.distance_scale_m": scale})
        rd = engine.train(c, "avseld", 0, data, cache, tmp_path / "runs", run_id=f"scale{scale}")
        runs[scale] = json.loads((rd / "log.jsonl").read_text().splitlines()[0])["train_loss"]
    assert runs[2.0] < runs[1.0]
