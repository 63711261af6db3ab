"""ADPIT: ~0 for every track permutation of a perfect prediction; masking of the on-screen BCE."""

import itertools

import numpy as np
import pytest
import torch

from avseld.labels import encode_adpit
from avseld.layout import AUDIO_LAYOUT, AV_LAYOUT
from avseld.losses import ADPITLoss


def _rows():
    """Frame 0: class 0 alone; class 1 twice; class 2 three times (same-class overlaps)."""
    rows = [(0, 0, 0, 30, 150, 1),
            (0, 1, 0, -40, 200, 0), (0, 1, 1, 60, 300, 1),
            (0, 2, 0, -80, 120, 1), (0, 2, 1, 0, 250, 0), (0, 2, 2, 70, 400, 1)]
    return np.asarray(rows, dtype=np.float64)


def _perfect(target: torch.Tensor, order_b, order_c) -> torch.Tensor:
    """A perfect output (1, T, 156) given which slot each track copies (A0 for one instance)."""
    t = target[0]  # (T, 6, 5, K)
    out = torch.zeros(t.shape[0], 3, 4, t.shape[-1])
    for k in range(t.shape[-1]):
        act = t[:, :, 0, k]  # (T, 6)
        for f in range(t.shape[0]):
            if act[f, 0] > 0:
                slots = (0, 0, 0)
            elif act[f, 1] > 0:
                slots = order_b
            elif act[f, 3] > 0:
                slots = order_c
            else:
                continue
            for n, s in enumerate(slots):
                out[f, n, 0:3, k] = t[f, s, 1:4, k]
                out[f, n, 3, k] = t[f, s, 4, k]
    return out.reshape(1, t.shape[0], AV_LAYOUT.dim)


B_ORDERS = [p for p in itertools.product((1, 2), repeat=3) if len(set(p)) == 2]  # 6
C_ORDERS = list(itertools.permutations((3, 4, 5)))  # 6


@pytest.mark.parametrize("order_c", C_ORDERS)
@pytest.mark.parametrize("order_b", B_ORDERS)
def test_perfect_prediction_has_zero_loss_for_every_permutation(order_b, order_c):
    target = torch.from_numpy(encode_adpit(_rows()))[None]
    out = _perfect(target, order_b, order_c)
    for mask in (False, True):
        assert ADPITLoss(AV_LAYOUT, mask_onscreen=mask)(out, target).item() < 1e-6


def test_wrong_prediction_costs_and_audio_layout_ignores_onscreen():
    target = torch.from_numpy(encode_adpit(_rows()))[None]
    out = _perfect(target, (1, 1, 2), (3, 4, 5))
    bad = out.clone().reshape(1, 50, 3, 4, 13)
    bad[0, 0, :, 0, 2] = -bad[0, 0, :, 0, 2]  # flip x of class 2's tracks
    assert ADPITLoss(AV_LAYOUT)(bad.reshape(1, 50, 156), target).item() > 1e-4
    audio_out = out.reshape(1, 50, 3, 4, 13)[:, :, :, :3].reshape(1, 50, 117)
    assert ADPITLoss(AUDIO_LAYOUT)(audio_out, target).item() < 1e-6


def test_onscreen_mask_ignores_silent_tracks():
    target = torch.from_numpy(encode_adpit(_rows()))[None]
    out = _perfect(target, (1, 1, 2), (3, 4, 5)).reshape(1, 50, 3, 4, 13)
    noisy = out.clone()
    noisy[0, 1:, :, 3, :] = 0.7  # on-screen output on frames without any event
    noisy = noisy.reshape(1, 50, 156)
    assert ADPITLoss(AV_LAYOUT, mask_onscreen=True)(noisy, target).item() < 1e-6
    assert ADPITLoss(AV_LAYOUT, mask_onscreen=False)(noisy, target).item() > 0.1
    wrong = out.clone()
    wrong[0, 0, 0, 3, 0] = 1 - wrong[0, 0, 0, 3, 0]  # active track, wrong flag
    def clamped(x):  # on-screen outputs inside (0, 1), so that the BCE is finite
        x = x.clone()
        x[..., 3, :] = x[..., 3, :].clamp(1e-4, 1 - 1e-4)
        return x.reshape(1, 50, 156)

    loss = ADPITLoss(AV_LAYOUT, mask_onscreen=True)
    extra = loss(clamped(wrong), target).item() - loss(clamped(out), target).item()
    # the wrong flag costs -log(1e-4) over the baseline's (frame, track, class) count, as unmasked
    assert extra == pytest.approx((-np.log(1e-4) + np.log(1 - 1e-4)) / (50 * 3 * 13), rel=1e-3)
    assert loss(clamped(wrong), target).item() <= ADPITLoss(AV_LAYOUT, mask_onscreen=False)(clamped(wrong), target).item()


def test_masked_onscreen_term_keeps_the_baseline_scale():
    """Masking removes silent tracks from the sum, never rescales it: masked <= unmasked always."""
    g = torch.Generator().manual_seed(0)
    target = torch.from_numpy(encode_adpit(_rows()))[None]
    for _ in range(5):
        out = torch.rand(1, 50, 156, generator=g) * 0.98 + 0.01
        assert ADPITLoss(AV_LAYOUT, mask_onscreen=True)(out, target).item() <= ADPITLoss(AV_LAYOUT, mask_onscreen=False)(out, target).item()


def test_loss_is_differentiable_and_batched_equals_mean():
    g = torch.Generator().manual_seed(0)
    out = torch.rand(3, 50, 156, generator=g, requires_grad=True)
    target = torch.from_numpy(np.stack([encode_adpit(_rows())] * 3))
    loss = ADPITLoss(AV_LAYOUT)(out, target)
    loss.backward()
    assert torch.isfinite(out.grad).all()
    each = torch.stack([ADPITLoss(AV_LAYOUT)(out[i:i + 1], target[i:i + 1]) for i in range(3)]).mean()
    torch.testing.assert_close(loss, each)


def test_distance_scale_is_the_loss_of_distances_in_those_units():
    """distance_scale_m=s: the loss equals the metre loss of outputs and targets whose distance field
    is divided by s; the distance error weighs 1/s^2 of what it does in metres, x/y errors unchanged."""
    g = torch.Generator().manual_seed(3)
    out = torch.rand(2, 50, 156, generator=g)
    target = torch.from_numpy(np.stack([encode_adpit(_rows())] * 2)).float()
    s = 2.5
    out_s = AV_LAYOUT.unflatten(out).clone()
    out_s[:, :, :, 2] /= s
    target_s = target.clone()
    target_s[:, :, :, 3] /= s
    scaled = ADPITLoss(AV_LAYOUT, distance_scale_m=s)(out, target)
    torch.testing.assert_close(scaled, ADPITLoss(AV_LAYOUT)(out_s.reshape(out.shape), target_s))
    assert float(scaled) < float(ADPITLoss(AV_LAYOUT)(out, target))  # the distance term shrinks
    perfect_xy = AV_LAYOUT.unflatten(_perfect(target[:1], (1, 2, 1), (3, 4, 5))).clone()
    perfect_xy[:, :, :, 2] += 1.0  # every distance 1 m off, x/y exact
    err_m = float(ADPITLoss(AV_LAYOUT)(perfect_xy.reshape(1, 50, 156), target[:1]))
    err_s = float(ADPITLoss(AV_LAYOUT, distance_scale_m=s)(perfect_xy.reshape(1, 50, 156), target[:1]))
    assert err_s == pytest.approx(err_m / s**2, rel=1e-4)
    with pytest.raises(ValueError, match="distance_scale_m"):
        ADPITLoss(AV_LAYOUT, distance_scale_m=0.0)
