"""The study's systems: the one table of what each variant and ablation trains and decodes with.

A system is a registered model (``avseld.models.MODELS``: class and constructor arguments) plus the
dotted config overrides it runs with, on top of a profile. A variant's own config (AV-SELD+'s distance
units and on-screen threshold) is the overrides of the system of the same name
(:func:`variant_config_overrides`); the CLI, the study and ``avseld models`` all read it from here.
Adding an ablation that a config field can express is one :class:`System` entry below; one that needs
a new constructor argument also registers a model in ``avseld/models/registry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avseld.config import Config, FeatureConfig
from avseld.errors import ConfigError


@dataclass(frozen=True)
class System:
    """One trainable system of the study.

    Attributes:
        key: short identifier used in tables and on the command line.
        label: the name printed in Table 1 and the figures.
        model: registered model name (``avseld.models.MODELS``).
        overrides: dotted config overrides applied on top of the profile.
        note: one line on what it changes, for the ablation table.
        reference: the system an ablation of this variant is compared with (04).
    """

    key: str
    label: str
    model: str
    overrides: tuple[tuple[str, Any], ...] = ()
    note: str = ""
    reference: str = "avseld"

    def config(self, cfg: Config) -> Config:
        """The profile ``cfg`` with ``model.name`` and this system's overrides (later ones win)."""
        return cfg.with_overrides({"model.name": self.model, **dict(self.overrides)})


# AV-SELD+'s visual input, fusion depth (one decoder layer) and training and decoding (its frame-local
# fusion and its fusion feeding the on-screen branch only are constructor arguments of the model
# avseld_plus), the on-screen fix, full-view tokens and the left-right swap, as the systems use them.
FULLVIEW = (("features.visual_mode", "fullview"),)
# AV-SELD+'s full-view tokens: the stride-8 map of the backbone (EfficientNet-Lite0: 40 channels, 12 x 24
# at the default profile's 192x96; the backbone stops there) pooled to 1 row x 12 columns, one token per
# twelfth of the width, all 40 channels kept (the projection is then a fixed rotation). benchmarks/onscreen_probe.py,
# events at folded |azimuth| < 50 (where stereo cannot tell front from back), dev-test: 64.5 % right with these
# tokens (79.1 % from the column at the event's azimuth), 56.1 % with 3 x 5 tokens of the last map, 54.1 % with
# the centre-crop map, 53.9 % by the majority.
FINE_TOKENS = FULLVIEW + (("features.fullview_stride", 8), ("features.fullview_grid", (1, 12)),
                          ("features.fullview_dim", 40))
# the baseline's centre-crop map again, with the full-view settings back at their defaults, so that the
# features (and the cache) are the replica's and AV-SELD's on a profile that leaves them unset
CENTRE_MAP = tuple((f"features.{k}", getattr(FeatureConfig(), k))
                   for k in ("visual_mode", "fullview_stride", "fullview_grid", "fullview_dim"))
PLUS = FINE_TOKENS + (("model.n_fusion_layers", 1), ("train.distance_scale_m", 2.0),
                      ("eval.onscreen_decision", "threshold"), ("eval.tune_onscreen_threshold", True))
ONSCREEN_FIX = (("eval.onscreen_decision", "threshold"), ("train.onscreen_mask", True))
LR_SWAP = (("train.lr_swap", True),)


def _plus(key: str, label: str, overrides: tuple[tuple[str, Any], ...], note: str) -> System:
    """An AV-SELD+ ablation: AV-SELD+'s overrides, then ``overrides``; compared with AV-SELD+."""
    return System(key, label, "avseld_plus", PLUS + overrides, note, "avseld_plus")


SYSTEMS: dict[str, System] = {
    s.key: s
    for s in (
        System("baseline_av", "Baseline replica", "baseline_av", (("eval.onscreen_decision", "truncate"),),
               "official SELDnet, audio + ResNet-style visual map, on-screen by truncation"),
        System("avseld", "AV-SELD", "avseld", (), "the report's system (ATEM + VFEM + decoder fusion)"),
        System("avseld_plus", "AV-SELD+", "avseld_plus", PLUS,
               "ours: full-view tokens, a one-layer fusion for the on-screen branch only, frame-local fusion, "
               "distance in 2-m units in the loss, on-screen threshold tuned on validation rooms"),
        # ablations of 04, each against the `avseld` reference on the same seeds
        System("no_atem", "w/o ATEM", "avseld_no_atem", (), "audio temporal enhancement removed"),
        System("no_vfem", "w/o VFEM", "avseld_no_vfem", (), "visual feature enhancement removed"),
        System("audio_only", "audio only", "avseld_audio", (), "no video at all"),
        System("onscreen_fix", "+ on-screen fix", "avseld", ONSCREEN_FIX,
               "on-screen by 0.5 threshold, BCE masked to active tracks"),
        System("fullview", "+ full-view tokens", "avseld", FULLVIEW + (("model.fusion_window", 1),),
               "whole 100-degree frame as tokens, each audio frame attending to its +-1 frames"),
        System("lr_swap", "+ left-right swap", "avseld", LR_SWAP, "left-right swap augmentation"),
        # AV-SELD+ with one of its ingredients taken out (or one more added), each against AV-SELD+ on the same seeds
        _plus("plus_no_dscale", "AV-SELD+ w/o distance in 2-m units", (("train.distance_scale_m", 1.0),),
              "distance in metres in the loss, as the baseline"),
        _plus("plus_no_window", "AV-SELD+ w/o frame-local fusion", (("model.fusion_window", 50),),
              "each audio frame attends to every video frame (the report's decoder)"),
        _plus("plus_truncate", "AV-SELD+ w/o tuned on-screen threshold",
              (("eval.onscreen_decision", "truncate"), ("eval.tune_onscreen_threshold", False)),
              "the baseline's truncated on-screen decision"),
        _plus("plus_centre_map", "AV-SELD+ w/ centre-crop map", CENTRE_MAP,
              "the baseline's centre-crop map (one vector per frame) instead of the full-view tokens"),
        _plus("plus_fused_all", "AV-SELD+ w/ every branch fused", (("model.fused_heads", "all"),),
              "DOA and distance read the fusion too (the report's decoder), not the audio frames"),
        _plus("plus_swap", "AV-SELD+ + left-right swap", LR_SWAP, "left-right swap augmentation"),
        _plus("plus_ld", "AV-SELD+ + level difference", (("model.level_difference", True),),
              "a left-minus-right log-mel input channel (part of AV-SELD+ until the study at d6ec7a3)"),
        _plus("plus_onscreen_mask", "AV-SELD+ + masked on-screen loss", (("train.onscreen_mask", True),),
              "on-screen BCE only on active tracks"),
    )
}


def get_system(key: str) -> System:
    """Look a system up by key; an unknown key raises :class:`ConfigError` listing the known ones."""
    if key not in SYSTEMS:
        raise ConfigError(f"unknown system '{key}' (known: {', '.join(SYSTEMS)})")
    return SYSTEMS[key]


def variant_config_overrides(model: str) -> dict[str, Any]:
    """The config overrides of the system named like model ``model`` (its own system), else none."""
    s = SYSTEMS.get(model)
    return dict(s.overrides) if s is not None and s.model == model else {}
