"""AV-SELD+'s on-screen readout at the predicted azimuth: geometry (the synthetic camera's pinhole),
locality (only the column at the azimuth counts), learning, and the config check."""

import math

import numpy as np
import pytest
import torch

from avseld.config import load_config
from avseld.errors import ConfigError
from avseld.models import build_model, resolve_model_args
from avseld.models.avseld_net import AzimuthColumnReadout, azimuth_column_weights
from avseld.synth.video import Camera

torch.set_num_threads(1)


def _xy(az_deg):
    a = torch.deg2rad(torch.as_tensor(az_deg, dtype=torch.float32))
    return torch.stack([torch.cos(a), torch.sin(a)], -1)


@pytest.mark.parametrize("az", [-49.0, -35.0, -12.5, 0.0, 7.0, 22.0, 41.0, 49.0])
def test_the_weights_peak_at_the_column_the_camera_draws_the_source_in(az):
    """A source at azimuth ``az`` (elevation 0) drawn by the synthetic camera of SPEC section 6 lands in the
    token column that carries the most weight, and the weights' centre of mass is its pixel column."""
    cam, n_cols = Camera(320, 180), 12
    a = math.radians(az)
    u, _, on = cam.project(np.array([[3.0 * math.cos(a), 3.0 * math.sin(a), 0.0]]))
    assert on[0]
    w = azimuth_column_weights(_xy(az), n_cols)
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    pixel_token = min(int(u[0] / cam.width * n_cols), n_cols - 1)  # the token the pixel falls in
    assert float(w[pixel_token]) >= float(w.max()) - 1e-6 > 0.49  # the most weight (0.5 each on a boundary)
    centre = float((w * (torch.arange(n_cols) + 0.5)).sum()) / n_cols * cam.width  # pixels
    edge = cam.width / n_cols / 2  # within half a token of either edge the weights clamp to the edge token
    if edge <= u[0] <= cam.width - edge:
        assert centre == pytest.approx(u[0], abs=1e-3)


@pytest.mark.parametrize("az", [55.0, -60.0, 90.0, 130.0, -170.0])
def test_directions_outside_the_view_read_no_column(az):
    cam = Camera(320, 180)
    a = math.radians(az)
    assert not cam.onscreen(np.array([[math.cos(a), math.sin(a), 0.0]]))[0]
    assert float(azimuth_column_weights(_xy(az), 12).abs().sum()) == 0.0


def test_a_slot_reads_only_the_column_at_its_azimuth_and_the_view_offset_outside():
    torch.manual_seed(0)
    r = AzimuthColumnReadout(16, 13)
    with torch.no_grad():
        r.outside.fill_(-3.0)
    tokens = torch.randn(1, 2, 12, 16)
    xy = torch.zeros(1, 2, 3, 2, 13)
    xy[..., 0, :], xy[..., 1, :] = _xy(22.0)  # every slot at 22 degrees: token u = 0.5 - 0.5 tan(22) / tan(50)
    xy[0, 0, 2, :, 5] = _xy(70.0)  # one slot outside the view
    with torch.no_grad():
        base = r(tokens, xy)
    far = tokens.clone()
    far[..., 8:, :] += 5.0  # the right of the picture; 22 degrees (left) reads columns 3 and 4
    assert torch.equal(r(far, xy)[0, 1], base[0, 1])
    near = tokens.clone()
    near[..., 3, :] += 5.0
    assert (r(near, xy)[0, 1] - base[0, 1]).abs().min() > 0
    assert float(base[0, 0, 2, 5]) == -3.0
    assert float(r(near, xy)[0, 0, 2, 5].detach()) == -3.0


def test_the_readout_learns_on_screen_from_the_column_at_the_azimuth():
    """On-screen is 1 where the token at the event's azimuth carries a marker (its first feature > 0): a
    readout that looks at the right column learns it; the labels are independent of every other column."""
    g = torch.Generator().manual_seed(0)
    b, t, n_cols, d = 64, 4, 12, 8
    tokens = torch.randn(b, t, n_cols, d, generator=g)
    az = (torch.rand(b, t, 1, 1, generator=g) * 96.0 - 48.0).expand(b, t, 1, 13)
    xy = torch.stack([torch.cos(torch.deg2rad(az)), torch.sin(torch.deg2rad(az))], -2)  # (B, T, 1, 2, K)
    col = azimuth_column_weights(xy.transpose(-1, -2), n_cols)[:, :, 0, 0].argmax(-1)  # (B, T)
    marker = torch.gather(tokens[..., 0], 2, col.unsqueeze(-1)).squeeze(-1)
    target = (marker > 0).float().unsqueeze(-1).unsqueeze(-1).expand(b, t, 1, 13)
    torch.manual_seed(0)
    r = AzimuthColumnReadout(d, 13, hidden=32)
    opt = torch.optim.Adam(r.parameters(), lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(r(tokens, xy), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float(((r(tokens, xy) > 0).float() == target).float().mean())
    assert acc > 0.95, acc


def test_the_model_option_needs_one_row_of_full_view_tokens():
    m = build_model("avseld_plus", visual_shape=(12, 40), onscreen_readout="azimuth")
    audio, video = torch.randn(1, 2, 251, 64), torch.randn(1, 50, 12, 40)
    m(audio, video).sum().backward()
    assert m.readout.outside.grad is not None
    with pytest.raises(ValueError, match="full-view tokens"):
        build_model("avseld_plus", visual_shape=(49,), onscreen_readout="azimuth")
    with pytest.raises(ValueError, match="onscreen_readout"):
        build_model("avseld_plus", visual_shape=(12, 40), onscreen_readout="column")
    cfg = load_config("smoke").with_overrides({"model.name": "avseld_plus", "model.onscreen_readout": "azimuth",
                                               "features.visual_mode": "fullview", "features.fullview_grid": [3, 5]})
    with pytest.raises(ConfigError, match="features.fullview_grid"):
        resolve_model_args(cfg, visual_shape=(15, 64))
    with pytest.raises(ConfigError, match="features.visual_mode"):
        resolve_model_args(cfg.with_overrides({"features.visual_mode": "baseline"}), visual_shape=(49,))
