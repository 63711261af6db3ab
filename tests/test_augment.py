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
