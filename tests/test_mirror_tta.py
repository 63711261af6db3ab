"""Test-time mirroring (``eval.mirror_tta``): the averaged output of a clip and of its left-right mirror."""

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
