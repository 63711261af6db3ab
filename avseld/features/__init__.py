"""Audio and visual features (SPEC sections 4 and 8): baseline-exact stereo log-mel with optional
inter-channel extras (:mod:`avseld.features.audio`) and per-frame visual features from offline
ImageNet backbones (:mod:`avseld.features.visual`). Caching lives in :mod:`avseld.cache`.
"""

from avseld.features.audio import (
    AUDIO_EXTRAS,
    LogMel,
    audio_channel_names,
    extract_audio_features,
    extract_logmel,
    swap_permutation,
)
from avseld.features.visual import (
    BACKBONES,
    VisualFeatureExtractor,
    build_backbone,
    build_visual_extractor,
    fullview_projection,
    visual_feature_shape,
)

__all__ = [
    "AUDIO_EXTRAS",
    "BACKBONES",
    "LogMel",
    "VisualFeatureExtractor",
    "audio_channel_names",
    "build_backbone",
    "build_visual_extractor",
    "extract_audio_features",
    "extract_logmel",
    "fullview_projection",
    "swap_permutation",
    "visual_feature_shape",
]
