"""Named model variants (timm-style registry): the baselines, AV-SELD and its ablations.

A variant is a model class and the constructor arguments that define it; the config overrides it
trains and decodes with live beside the study's other systems in :mod:`avseld.systems`.
``build_model(name, **overrides)`` builds a variant with the official defaults, so
``build_model("baseline_av")`` needs no config; only :func:`resolve_model_args` reads a config.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from torch import nn

from avseld.models.avseld_net import AVSELDNet
from avseld.models.seldnet import SELDNet


@dataclass(frozen=True)
class ModelSpec:
    """One registered variant.

    Attributes:
        name: registry name.
        builder: the model class.
        kwargs: constructor arguments that define the variant (on top of the class defaults).
        description: one line for ``avseld models``.
    """

    name: str
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS`.

    Raises:
        ValueError: the name is taken, a kwarg is no constructor argument, or a kwarg is a
            ``model.*`` config field whose default is not None (the config would always replace it).
    """
    from avseld.config import ModelConfig

    if spec.name in MODELS:
        raise ValueError(f"model '{spec.name}' is already registered")
    params = inspect.signature(spec.builder).parameters
    unknown = [k for k in spec.kwargs if k not in params]
    if unknown:
        raise ValueError(f"model '{spec.name}': {spec.builder.__name__} has no argument(s) {unknown}")
    defaults = ModelConfig()
    shadowed = [k for k in spec.kwargs if getattr(defaults, k, None) is not None]
    if shadowed:
        raise ValueError(f"model '{spec.name}' sets {shadowed}, model.* config fields with a default: "
                         "make their default None ('the variant's value') first")
    MODELS[spec.name] = spec
    return spec


register(ModelSpec("baseline_audio", SELDNet, {"visual_shape": None},
                   "official SELDnet, audio only (Multi-ACCDOA 3x3x13, no on-screen output)"))
register(ModelSpec("baseline_av", SELDNet, {},
                   "official SELDnet, audio-visual (Linear visual embedding + 2-layer Transformer decoder)"))
register(ModelSpec("avseld", AVSELDNet, {},
                   "AV-SELD: ATEM (2-head self-attention) + VFEM + decoder fusion + three heads"))
register(ModelSpec("avseld_no_atem", AVSELDNet, {"atem": False},
                   "AV-SELD without the audio temporal self-attention (BiGRU output goes to the fusion)"))
register(ModelSpec("avseld_no_vfem", AVSELDNet, {"vfem": False},
                   "AV-SELD without visual enhancement (plain Linear projection, as the baseline)"))
register(ModelSpec("avseld_audio", AVSELDNet, {"visual_shape": None},
                   "AV-SELD audio branch only (no video, no fusion; on-screen head kept)"))
register(ModelSpec(
    "avseld_plus", AVSELDNet, {"fusion_window": 1, "fused_heads": "onscreen"},
    "AV-SELD with frame-local cross-attention (+-1 video frame) whose output feeds the on-screen branch only "
    "(DOA and distance read the audio frames), full-view tokens, "
    "distance in 2-m units in the loss and a thresholded on-screen decision whose threshold is tuned on the "
    "validation rooms",
))


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
    return MODELS[name]


def model_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    """The full constructor arguments of variant ``name`` with ``overrides`` applied."""
    spec = _spec(name)
    params = inspect.signature(spec.builder).parameters
    unknown = [k for k in overrides if k not in params]
    if unknown:
        raise ValueError(f"model '{name}' has no argument(s) {unknown} (known: {list(params)})")
    kw = {k: p.default for k, p in params.items()}
    kw.update(spec.kwargs)
    kw.update(overrides)
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in kw.items()}


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Build the registered variant ``name``; ``overrides`` replace constructor arguments.

    The returned module carries ``model_name`` and ``model_kwargs`` (what a checkpoint stores).
    """
    kw = model_kwargs(name, **overrides)
    model = _spec(name).builder(**kw)
    model.model_name = name
    model.model_kwargs = kw
    return model


def uses_video(name: str) -> bool:
    """Whether variant ``name`` takes visual features."""
    return model_kwargs(name).get("visual_shape") is not None


def resolve_model_args(cfg, name: str | None = None, in_channels: int | None = None,
                       visual_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The exact constructor arguments a config builds (what a run stores beside its config).

    One rule, later sources winning: the class defaults, the variant's arguments
    (:data:`MODELS`), every ``model.*`` field the class takes whose value is not None (None means
    "the variant's value"; any other value, the default included, is used), ``input_norm`` when
    ``train.standardize`` is on, then the cached features' ``in_channels`` and ``visual_shape``
    (the latter only for variants that take video). Fields the class does not take are left out (one
    profile serves every system); the variant's own names are checked at :func:`register`.

    Args:
        cfg: the resolved :class:`avseld.config.Config`.
        name: variant (default ``cfg.model.name``).
        in_channels: audio channels C of the cached features.
        visual_shape: per-frame visual shape of the cached features (ignored by audio-only variants).
    """
    from avseld.config import ModelConfig

    name = name or cfg.model.name
    params = inspect.signature(_spec(name).builder).parameters
    over: dict[str, Any] = {}
    for f in fields(ModelConfig):
        value = getattr(cfg.model, f.name)
        if f.name != "name" and f.name in params and value is not None:
            over[f.name] = value
    if getattr(cfg.train, "standardize", False):  # the statistics are set by the engine (avseld.cache.audio_stats)
        over["input_norm"] = True
    if in_channels is not None:
        over["in_channels"] = in_channels
    if visual_shape is not None and uses_video(name):
        over["visual_shape"] = tuple(visual_shape)
    kw = model_kwargs(name, **over)
    if kw.get("onscreen_readout") == "azimuth":
        _check_token_row(cfg)
    return kw


def _check_token_row(cfg) -> None:
    """The azimuth readout reads token columns: it needs full-view tokens in one row.

    Raises:
        ConfigError: naming ``features.visual_mode`` or ``features.fullview_grid``.
    """
    from avseld.errors import ConfigError

    if cfg.features.visual_mode != "fullview":
        raise ConfigError("config key model.onscreen_readout: 'azimuth' reads full-view token columns, but "
                          f"features.visual_mode is {cfg.features.visual_mode!r} (set it to 'fullview')")
    rows = tuple(cfg.features.fullview_grid)[0]
    if rows != 1:
        raise ConfigError("config key features.fullview_grid: model.onscreen_readout='azimuth' needs one row of "
                          f"tokens, got {tuple(cfg.features.fullview_grid)}")


def build_model_from_config(cfg, name: str | None = None, in_channels: int | None = None,
                            visual_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Build a variant with the arguments of :func:`resolve_model_args` (same arguments)."""
    name = name or cfg.model.name
    return build_model(name, **resolve_model_args(cfg, name, in_channels, visual_shape))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
