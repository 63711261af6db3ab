"""Every registered variant: forward, backward, shapes, attention maps; baseline parameter counts."""

import pytest
import torch

from avseld.layout import AUDIO_LAYOUT, AV_LAYOUT, N_LABEL_FRAMES
from avseld.models import MODELS, build_model, count_parameters, variant_config_overrides

torch.set_num_threads(1)


def _inputs(model, b=2):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(b, 2, 251, 64, generator=g)
    video = torch.randn(b, N_LABEL_FRAMES, *model.visual_shape, generator=g) if model.uses_video else None
    return audio, video


@pytest.mark.parametrize("name", list(MODELS))
def test_variant_forward_backward(name, device):
    torch.manual_seed(0)
    model = build_model(name).to(device)
    audio, video = (x.to(device) if x is not None else None for x in _inputs(model))
    out, attn = model(audio, video, return_attention=True)
    layout = model.layout
    assert layout in (AV_LAYOUT, AUDIO_LAYOUT)
    assert out.shape == (2, N_LABEL_FRAMES, layout.dim)
    assert torch.isfinite(out).all()
    xy, dist, onscreen = layout.split(out)
    assert xy.abs().max() <= 1 and dist.min() >= 0
    if onscreen is not None:
        assert 0 <= onscreen.min() and onscreen.max() <= 1
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # attention maps: (B, heads, Tq, Tk) from the same pass; rows sum to one (eval: no dropout)
    assert attn, "every variant has at least one attention module"
    if model.uses_video:
        assert any(k.endswith("_cross") for k in attn)
    model.eval()
    with torch.no_grad():
        a = model(audio, video)
        b, attn = model(audio, video, return_attention=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    for key, w in attn.items():
        assert w.ndim == 4 and w.shape[0] == 2 and w.shape[2] == N_LABEL_FRAMES, key
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5, rtol=0)


def test_official_parameter_counts():
    assert count_parameters(build_model("baseline_audio")) == 734_261
    assert count_parameters(build_model("baseline_av")) == 2_723_676


def test_visual_shape_is_a_constructor_argument():
    m = build_model("baseline_av", visual_shape=(21,))
    out = m(torch.randn(1, 2, 251, 64), torch.randn(1, 50, 21))
    assert out.shape == (1, 50, 156)
    with pytest.raises(ValueError, match="no argument"):
        build_model("avseld", not_an_arg=1)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")


def test_avseld_plus_carries_its_design_and_config():
    m = build_model("avseld_plus")
    assert not m.encoder.level_difference and m.encoder.blocks[0].conv.in_channels == 2  # L, R (no L - R since d6ec7a3's study)
    assert m.fusion_window == 1 and m.fused_heads == "onscreen"
    over = variant_config_overrides("avseld_plus")
    assert over == {"features.visual_mode": "fullview", "features.fullview_stride": 8, "features.fullview_grid": (1, 12),
                    "features.fullview_dim": 40, "model.n_fusion_layers": 1, "train.distance_scale_m": 2.0,
                    "eval.onscreen_decision": "threshold",
                    "eval.tune_onscreen_threshold": True}
    # frame-local cross-attention: no weight outside +-1 frame
    _, attn = m.eval()(*_inputs(m, 1), return_attention=True)
    w = attn["decoder0_cross"][0, 0].reshape(50, 50, -1).sum(-1)  # (Tq, T visual frames)
    far = (torch.arange(50)[:, None] - torch.arange(50)[None, :]).abs() > 1
    assert w[far].abs().max() == 0


@pytest.mark.parametrize("window", [0, 1, 3, 48, 49, 50])
def test_frame_local_cross_attention_equals_masked_attention_over_all_tokens(window):
    """fusion_window computes each query's window only; outputs and maps equal the masked full form.
    A window of 49 frames or more reaches every frame of a 50-frame clip, and is computed as no window."""
    from avseld.models.avseld_net import AVSELDNet

    torch.manual_seed(0)
    m = AVSELDNet(visual_shape=(4, 8), fusion_window=window).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 50, 128, generator=g)
    v = torch.randn(2, 50, 4, 128, generator=g)  # (B, T, n_tokens, D) after the VFEM
    far = (torch.arange(50)[:, None] - torch.arange(50).repeat_interleave(4)[None, :]).abs() > window
    with torch.no_grad():
        ref, ref_attn = m.fusion(x, v.reshape(2, 200, 128), far, return_attention=True)
        got, got_attn = m._fuse(x, v, return_attention=True)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=0)
    assert got_attn.keys() == ref_attn.keys()
    for k in ref_attn:
        assert got_attn[k].shape == ref_attn[k].shape == ((2, 8, 50, 200) if "cross" in k else (2, 8, 50, 50))
        torch.testing.assert_close(got_attn[k], ref_attn[k], atol=1e-6, rtol=0)
    # training mode: gradients flow through the gathered keys to every visual token in a window
    m.train()
    v.requires_grad_(True)
    m._fuse(x, v, return_attention=False)[0].sum().backward()
    assert v.grad.abs().sum(-1).min() > 0


def test_an_explicit_model_value_wins_and_none_keeps_the_variants():
    from avseld.config import load_config
    from avseld.models import build_model_from_config, resolve_model_args

    cfg = load_config("smoke")
    plus = resolve_model_args(cfg, "avseld_plus")
    assert plus["fusion_window"] == 1 and plus["input_norm"] is True  # smoke standardizes
    assert resolve_model_args(cfg.with_overrides({"model.fusion_window": 50}), "avseld_plus")["fusion_window"] == 50
    assert resolve_model_args(cfg, "avseld")["fusion_window"] is None
    assert resolve_model_args(cfg.with_overrides({"model.level_difference": False}), "avseld")["level_difference"] is False
    args = resolve_model_args(cfg, "baseline_av", in_channels=3, visual_shape=(21,))
    assert args["in_channels"] == 3 and args["visual_shape"] == (21,)
    assert resolve_model_args(cfg, "avseld_audio", visual_shape=(21,))["visual_shape"] is None
    m = build_model_from_config(cfg, "baseline_av", in_channels=3, visual_shape=(21,))
    assert m.model_kwargs == args  # what the checkpoint stores is what the resolver says


def test_a_variant_may_only_set_arguments_the_config_leaves_unset():
    from avseld.models.registry import ModelSpec, register
    from avseld.models.avseld_net import AVSELDNet

    with pytest.raises(ValueError, match="config fields with a default"):
        register(ModelSpec("tmp_dropout", AVSELDNet, {"dropout": 0.2}))  # model.dropout would always replace it
    with pytest.raises(ValueError, match="no argument"):
        register(ModelSpec("tmp_unknown", AVSELDNet, {"not_an_arg": 1}))
    assert "tmp_dropout" not in MODELS and "tmp_unknown" not in MODELS


def test_loss_and_decoder_take_the_models_layout():
    from avseld.decode import decode_output
    from avseld.losses import ADPITLoss

    m = build_model("avseld", n_classes=5).eval()
    out = m(*_inputs(m, 1))
    assert out.shape[-1] == m.layout.dim == 3 * 4 * 5  # no standard width: only the model's layout decodes it
    decode_output(out[0], layout=m.layout)
    with pytest.raises(TypeError, match="layout"):  # the width alone never decides the layout
        decode_output(out[0])
    with pytest.raises(ValueError, match="does not match the model's layout"):
        decode_output(out[0], layout=AV_LAYOUT)
    with pytest.raises(ValueError, match="does not match the model's layout"):
        ADPITLoss(layout=AUDIO_LAYOUT)(torch.zeros(1, 50, AV_LAYOUT.dim), torch.zeros(1, 50, 6, 5, 13))
    with pytest.raises(ValueError, match="5"):
        ADPITLoss(layout=m.layout)(out, torch.zeros(1, 50, 6, 5, 13))
    with pytest.raises(ValueError, match="tracks"):
        ADPITLoss(layout=build_model("avseld", n_tracks=2).layout)


@pytest.mark.parametrize("fused_heads", ["all", "onscreen"])
def test_fused_heads_decide_which_outputs_the_picture_reaches(fused_heads):
    """With ``fused_heads="onscreen"`` another clip's picture changes the on-screen output only; DOA and
    distance come from the audio frames. With ``"all"`` (the report's AV-SELD) it changes all three."""
    torch.manual_seed(0)
    m = build_model("avseld", visual_shape=(12, 40), fused_heads=fused_heads).eval()
    audio = torch.randn(2, 2, 251, 64)
    a, b = m(audio, torch.randn(2, 50, 12, 40)), m(audio, torch.randn(2, 50, 12, 40))
    ua, ub = m.layout.unflatten(a), m.layout.unflatten(b)  # (B, T, tracks, fields, classes)
    on = m.layout.field("onscreen")
    spatial = [m.layout.field(f) for f in m.layout.fields if f != "onscreen"]
    assert (ua[..., on, :] - ub[..., on, :]).abs().max() > 1e-4
    moved = (ua[..., spatial, :] - ub[..., spatial, :]).abs().max()
    assert moved == 0 if fused_heads == "onscreen" else moved > 1e-4
    with pytest.raises(ValueError, match="fused_heads"):
        build_model("avseld", fused_heads="doa")
