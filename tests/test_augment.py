"""Left-right swap: an involution that mirrors audio channels, video maps or tokens, and targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avseld.augment import swap_left_right
from avseld.labels import encode_adpit, mirror_labels


@pytest.mark.parametrize("as_torch", [False, True])
def test_swap_twice_is_identity_and_targets_mirror(as_torch):
    rng = np.random.default_rng(0)
    rows = np.array([[0, 3, 0, 30, 150, 1], [0, 3, 1, -45, 200, 0], [5, 5, 0, 10, 100, 0]], float)
    audio = rng.standard_normal((2, 7, 251, 64)).astype(np.float32)
    video = rng.standard_normal((2, 50, 49)).astype(np.float32)
    targets = np.stack([encode_adpit(rows), encode_adpit(rows[:1])])
    extra = ("midside", "ild", "ipd")
    conv = (lambda a: torch.from_numpy(a)) if as_torch else (lambda a: a)
    a1, v1, t1 = swap_left_right(conv(audio), conv(video), conv(targets), extra)
    a2, v2, t2 = swap_left_right(a1, v1, t1, extra)
    for x, y in ((a2, audio), (v2, video), (t2, targets)):
        np.testing.assert_array_equal(np.asarray(x), y)
    a1, v1, t1 = (np.asarray(x) for x in (a1, v1, t1))
    np.testing.assert_array_equal(a1[:, 0], audio[:, 1])
    np.testing.assert_array_equal(a1[:, 4], -audio[:, 4])  # ILD
    np.testing.assert_array_equal(a1[:, 6], -audio[:, 6])  # IPD sin
    np.testing.assert_array_equal(a1[:, 2:4], audio[:, 2:4])  # mid, side
    np.testing.assert_array_equal(v1.reshape(2, 50, 7, 7), video.reshape(2, 50, 7, 7)[..., ::-1])
    np.testing.assert_allclose(t1[0], encode_adpit(mirror_labels(rows)), atol=1e-7)  # mirrored labels


def test_swap_fullview_tokens_and_none():
    video = np.arange(50 * 6 * 4, dtype=np.float32).reshape(50, 6, 4)  # grid 2x3, dim 4
    _, v, _ = swap_left_right(None, video, None, visual_grid=(2, 3))
    np.testing.assert_array_equal(v.reshape(50, 2, 3, 4), video.reshape(50, 2, 3, 4)[:, :, ::-1])
    with pytest.raises(ValueError, match="square"):
        swap_left_right(None, np.zeros((50, 15)), None)


def test_mask_spectrogram_masks_the_same_bands_and_frames_in_every_channel():
    from avseld.augment import mask_spectrogram

    audio = torch.randn(16, 3, 251, 64)
    fill = torch.arange(3 * 64, dtype=torch.float32).reshape(3, 64) + 1000.0  # no random value equals it
    out = mask_spectrogram(audio, fill, np.random.default_rng(3), n_freq=2, max_bands=8, n_time=2, max_frames=25)
    assert out.shape == audio.shape and not torch.equal(out, audio)
    masked = out != audio  # (B, C, T, F)
    assert torch.equal(masked[:, 0], masked[:, 1]) and torch.equal(masked[:, 0], masked[:, 2])
    torch.testing.assert_close(out[masked], fill.view(1, 3, 1, 64).expand_as(out)[masked])
    m = masked[:, 0]  # (B, T, F)
    full_bands = m.all(dim=1)  # (B, F): bands masked over every frame
    full_frames = m.all(dim=2)  # (B, T): frames masked in every band
    assert torch.equal(m, full_bands[:, None, :] | full_frames[:, :, None])  # nothing but whole bands and frames
    assert int(full_bands.sum(1).max()) <= 16 and int(full_frames.sum(1).max()) <= 50  # two masks of <= 8 / 25 each
    assert int(full_bands.sum()) > 0 and int(full_frames.sum()) > 0
    again = mask_spectrogram(audio, fill, np.random.default_rng(3), 2, 8, 2, 25)
    assert torch.equal(again, out)  # the generator alone decides the masks
    assert torch.equal(mask_spectrogram(audio, fill, np.random.default_rng(3), 0, 8, 0, 25), audio)
    with pytest.raises(ValueError, match="fill has shape"):
        mask_spectrogram(audio, fill[:2], np.random.default_rng(0), 1, 8, 1, 25)


def test_training_with_spectrogram_masks_is_deterministic_and_keeps_the_unmasked_run_id(tmp_path):
    from avseld import engine, inference, runs
    from avseld.errors import ConfigError
    from engine_fixtures import make_dataset

    over = {"train.epochs": 1, "train.batch_size": 4, "data.val_fraction": 0.0, "train.standardize": True}
    weights = {}
    for tag, masks in (("off", 0), ("on", 2), ("on_again", 2)):
        cfg, data, cache = make_dataset(tmp_path / tag, n_train_rooms=2, clips_per_room=4,
                                        overrides={**over, "train.freq_masks": masks, "train.time_masks": masks})
        run = engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / tag / "runs")
        weights[tag] = inference.load_model(run, "last").state_dict()
    from avseld.config import hashable_dict

    plain = cfg.with_overrides({"train.freq_masks": 0, "train.time_masks": 0})
    hashed = hashable_dict(plain.to_dict())["train"]
    assert not {"freq_masks", "freq_mask_bands", "time_masks", "time_mask_frames"} & set(hashed)  # old run ids kept
    assert runs.run_id(plain, 0) != runs.run_id(cfg, 0)  # masks on: a new run id
    differ = [k for k, v in weights["on"].items() if v.dtype.is_floating_point and not torch.equal(v, weights["off"][k])]
    assert differ  # the masks reached training
    assert all(torch.equal(v, weights["on_again"][k]) for k, v in weights["on"].items())
    cfg, data, cache = make_dataset(tmp_path / "bad", n_train_rooms=2, clips_per_room=4,
                                    overrides={**over, "train.time_masks": -1})
    with pytest.raises(ConfigError, match="train.time_masks"):
        engine.train(cfg, "baseline_audio", 0, data, cache, tmp_path / "bad" / "runs")
