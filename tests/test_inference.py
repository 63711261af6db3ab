"""Inference (avseld.inference): test-time mirroring (``eval.mirror_tta``, the averaged output of a clip and of
its left-right mirror) and the video controls (the picture taken away, everything else kept)."""

import numpy as np
import pytest
import torch

from avseld import inference
from avseld.augment import swap_left_right
from avseld.batches import ClipArrays
from avseld.models import build_model

torch.set_num_threads(1)


def _arrays(audio: np.ndarray, video: np.ndarray) -> ClipArrays:
    n = len(audio)
    return ClipArrays([f"c{i}" for i in range(n)], ["r"] * n, audio, video, None, None, np.arange(n))


@pytest.mark.parametrize("name", ["baseline_av", "avseld_plus"])
def test_mirrored_output_is_left_right_equivariant(name):
    """With mirroring, the output for a mirrored clip is the mirrored output of the clip (y negated),
    to float precision; without it, an untrained network is far from equivariant."""
    torch.manual_seed(0)
    model = build_model(name, visual_shape=(16,)).eval()
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(3, 2, 251, 64)).astype(np.float32)
    video = rng.normal(size=(3, 50, 16)).astype(np.float32)
    ma, mv, _ = swap_left_right(audio, video, None)
    y = model.layout.fields.index("y")

    def out(a, v, mirror):
        o = inference.predict_outputs(model, _arrays(a, v), torch.device("cpu"), mirror=mirror)
        return model.layout.unflatten(o)  # (N, T, tracks, fields, classes)

    for mirror, equivariant in ((True, True), (False, False)):
        plain, of_mirror = out(audio, video, mirror), out(ma, mv, mirror)
        back = of_mirror.copy()
        back[..., y, :] *= -1
        err = np.abs(back - plain).max()
        assert (err < 1e-5) if equivariant else (err > 1e-3), (mirror, err)


def test_mirroring_is_the_mean_of_both_passes():
    torch.manual_seed(1)
    model = build_model("avseld", visual_shape=(16,)).eval()
    rng = np.random.default_rng(1)
    audio = rng.normal(size=(2, 2, 251, 64)).astype(np.float32)
    video = rng.normal(size=(2, 50, 16)).astype(np.float32)
    ma, mv, _ = swap_left_right(audio, video, None)
    cpu = torch.device("cpu")
    plain = inference.predict_outputs(model, _arrays(audio, video), cpu)
    mirrored = model.layout.unflatten(inference.predict_outputs(model, _arrays(ma, mv), cpu)).copy()
    mirrored[..., model.layout.fields.index("y"), :] *= -1
    tta = inference.predict_outputs(model, _arrays(audio, video), cpu, mirror=True)
    np.testing.assert_allclose(tta, 0.5 * (plain + mirrored.reshape(plain.shape)), atol=1e-6)


def _control_arrays(n=5):
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(n, 2, 251, 64)).astype(np.float32)
    video = rng.normal(size=(n, 50, 9)).astype(np.float32)
    targets = rng.normal(size=(n, 50, 6, 5, 13)).astype(np.float32)
    names = [f"c{i}" for i in range(n)]
    return ClipArrays(names, ["r"] * n, audio, video, targets, {k: np.zeros((0, 6)) for k in names},
                      np.array([4, 0, 2, 3], dtype=np.int64))


def test_video_controls_take_the_picture_away_and_keep_everything_else():
    arr = _control_arrays()
    z = inference.video_control_arrays(arr, "zeros")
    assert z.clip_names == arr.clip_names and not np.any(z.video)
    assert np.array_equal(z.audio, arr.audio[arr.rows]) and np.array_equal(z.targets, arr.targets[arr.rows])
    s = inference.video_control_arrays(arr, "shuffled")
    own = arr.video[arr.rows]
    assert s.clip_names == arr.clip_names and np.array_equal(s.audio, arr.audio[arr.rows])
    # every clip gets another clip's video, and every video is used once
    source = [next(j for j in range(len(own)) if np.array_equal(s.video[i], own[j])) for i in range(len(own))]
    assert sorted(source) == list(range(len(own))) and all(src != i for i, src in enumerate(source))
    with pytest.raises(Exception, match="unknown video control"):
        inference.video_control_arrays(arr, "blur")
