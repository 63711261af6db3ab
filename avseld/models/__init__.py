"""SELD models: the official baseline replica, AV-SELD and a registry of named variants."""

from avseld.models.avseld_net import AVSELDNet, VisualEnhancer
from avseld.models.registry import (
    MODELS,
    ModelSpec,
    build_model,
    build_model_from_config,
    count_parameters,
    model_kwargs,
    resolve_model_args,
    uses_video,
)
from avseld.models.seldnet import SELDNet
from avseld.systems import variant_config_overrides  # the variants' config lives with the study's systems

__all__ = [
    "MODELS", "ModelSpec", "SELDNet", "AVSELDNet", "VisualEnhancer", "build_model", "build_model_from_config",
    "count_parameters", "model_kwargs", "resolve_model_args", "uses_video", "variant_config_overrides",
]
