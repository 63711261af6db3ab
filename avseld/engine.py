"""Training: ``train`` over the feature cache (inference and prediction: :mod:`avseld.inference`).

The loop follows the official DCASE 2025 baseline (``main.py`` of partha2409/DCASE2025_seld_baseline:
Adam, ADPIT, drop-last batches, best checkpoint by F20) with what it lacks: validation on held-out
training rooms (dev-test selection only behind ``train.select_on=dev-test``), atomic best/last
checkpoints loadable with ``weights_only=True``, exact resume, a non-finite-loss stop, JSON-lines and
TensorBoard logs, mixed precision on GPU, and DistributedDataParallel under ``torchrun``
(:mod:`avseld.devices`).

The run folder it writes is :class:`avseld.runs.RunFolder`; the optimizer side and the checkpoints
that restore it are :class:`avseld.train_state.TrainState`. ``train`` opens the run folder (resume
policy, :func:`open_run`), checks the settings, makes sure of the feature cache, builds the model and its
train state, then runs per epoch :func:`train_one_epoch`, :func:`validate`, :class:`EpochLogger` and the
checkpoints; at the end it tunes the on-screen threshold and predicts dev-test.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avseld import runs
from avseld.augment import mask_spectrogram
from avseld.batches import ClipArrays, epoch_batches, load_clip_arrays, split_by_rooms, swap_flags
from avseld.cache import ensure_feature_cache, feature_cache_dir
from avseld.checkpoint import load_checkpoint
from avseld.config import Config
from avseld.devices import DistEnv, autocast, barrier, distribute, setup_distributed, unwrap
from avseld.errors import AvseldError, ConfigError, DataError
from avseld.inference import METRIC_KEYS, evaluate, predict, tune_onscreen_threshold
from avseld.losses import ADPITLoss
from avseld.models import build_model_from_config, uses_video
from avseld.runs import RunFolder
from avseld.train_state import TrainState

log = logging.getLogger(__name__)


class NonFiniteLossError(AvseldError):
    """Training stopped because the loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Training: the run folder and its resume policy
# --------------------------------------------------------------------------------------------


def open_run(run: RunFolder, cfg: Config, resume: bool, env: DistEnv) -> tuple[Config, dict[str, Any] | None] | None:
    """The config to train with and the ``last.pt`` state to continue from (None: start afresh);
    None for a finished run when resuming.

    With ``resume`` a run continues from its ``last.pt`` with its saved config, or starts again from
    scratch when it stopped before its first checkpoint.

    Raises:
        ConfigError: the run folder holds a started run and ``resume`` is False.
    """
    if resume and run.metrics_path().is_file():
        log.info("%s is finished; nothing to resume", run.path)
        return None
    last = run.checkpoint("last")
    if resume and last.is_file():
        saved = run.read_config()
        sections = ("features", "model", "train", "eval")
        if saved.section_hash(*sections) != cfg.section_hash(*sections):
            log.warning("resuming %s with its saved config.yaml (the given config differs)", run.path)
        return saved, load_checkpoint(last)
    if resume:  # stopped before its first checkpoint: start again from scratch
        if env.is_main:
            run.clear_progress()
    elif run.path.exists() and run.is_started:
        raise ConfigError(f"{run.path}: run folder exists; pass --resume to continue it or choose another --run-id")
    return cfg, None


def check_train_settings(tc, env: DistEnv) -> None:
    """Positive epochs and batch size; a batch that splits evenly over processes and accumulation steps."""
    if tc.epochs < 1 or tc.batch_size < 1:
        raise ConfigError("config keys 'train.epochs' and 'train.batch_size' must be positive")
    if tc.batch_size % (env.world_size * tc.accumulate) or tc.accumulate < 1:
        raise ConfigError(f"config key 'train.batch_size': {tc.batch_size} is not divisible by {env.world_size} "
                          f"processes x {tc.accumulate} accumulation steps")
    for key in ("freq_masks", "freq_mask_bands", "time_masks", "time_mask_frames"):
        if getattr(tc, key) < 0:
            raise ConfigError(f"config key 'train.{key}' must be 0 or more, got {getattr(tc, key)}")


def training_sets(cfg: Config, cache_dir: Path, video: bool) -> tuple[ClipArrays, ClipArrays, ClipArrays | None]:
    """(every training clip, the training set, the validation set or None) from the feature cache:
    validation on held-out training rooms, or on dev-test with ``train.select_on=dev-test``."""
    tc = cfg.train
    train_all = load_clip_arrays(cache_dir, cfg.data.train_splits, need_video=video)
    if train_all.targets is None:
        raise DataError(f"{cache_dir}: training splits {list(cfg.data.train_splits)} have no targets")
    if tc.select_on == "dev-test":
        log.warning("selecting the checkpoint on dev-test (train.select_on=dev-test), as the baseline does")
        train_set, val_set = train_all, load_clip_arrays(cache_dir, cfg.data.test_splits, need_video=video)
    else:
        tr, va = split_by_rooms([train_all.rooms[i] for i in train_all.rows], cfg.data.val_fraction)
        train_set, val_set = train_all.subset(tr), (train_all.subset(va) if len(va) else None)
    if len(train_set) < tc.batch_size:
        raise ConfigError(f"config key 'train.batch_size': {tc.batch_size} exceeds the {len(train_set)} training clips")
    return train_all, train_set, val_set


def build_train_model(cfg: Config, model_name: str, seed: int, train_all: ClipArrays, cache_dir: Path,
                      device: torch.device) -> nn.Module:
    """The model, initialised from ``seed``, for the cached features' shapes; with ``train.standardize``
    its input statistics are those of the training splits."""
    torch.manual_seed(seed)
    model = build_model_from_config(cfg, model_name, in_channels=train_all.audio.shape[1],
                                    visual_shape=train_all.visual_shape).to(device)
    if cfg.train.standardize:
        from avseld.cache import audio_stats

        model.encoder.set_input_stats(*audio_stats(cache_dir, cfg.data.train_splits,
                                                   level_difference=model.encoder.level_difference))
    return model


# --------------------------------------------------------------------------------------------
# Training: one epoch, validation, the epoch log
# --------------------------------------------------------------------------------------------


def train_one_epoch(net: nn.Module, data: ClipArrays, state: TrainState, loss_fn: nn.Module, cfg: Config,
                    env: DistEnv, seed: int, with_video: bool, use_amp: bool,
                    mask_fill: torch.Tensor | None = None) -> float:
    """One pass over ``data`` (epoch ``state.epoch + 1``): drop-last batches of this process's share,
    ``train.accumulate`` micro-batches per optimizer step, optional left-right swaps, optional spectrogram
    masks when ``mask_fill`` (C, F) is given (``train.freq_masks`` / ``train.time_masks``; :func:`train` gives it
    when either is on; the draws come from a generator seeded by (seed, epoch, rank), apart from torch's
    random stream).

    Returns:
        The mean training loss per optimizer step (averaged over processes).

    Raises:
        NonFiniteLossError: the loss of a step was NaN or infinite (no optimizer step taken).
    """
    tc = cfg.train
    epoch = state.epoch
    model = unwrap(net)
    visual_grid = tuple(cfg.features.fullview_grid) if cfg.features.visual_mode == "fullview" else None
    net.train()
    batches = epoch_batches(len(data), tc.batch_size, epoch, seed, env.world_size, env.rank)
    swaps = swap_flags(len(data), epoch, seed) if tc.lr_swap else None
    mask_rng = np.random.default_rng([seed, epoch, env.rank, 0x5EC]) if mask_fill is not None else None
    loss_sum = torch.zeros((), dtype=torch.float64)
    for step, pos in enumerate(batches):
        state.optimizer.zero_grad(set_to_none=True)
        seen = torch.zeros((), dtype=torch.float64)
        for micro in range(tc.accumulate):  # micro-batch m = elements m, m+A, ... of the batch
            mpos = pos[micro::tc.accumulate]
            audio, vid, tgt = data.fetch(mpos, env.device, with_video=with_video)
            if swaps is not None:
                audio, vid, tgt = _swap_some(audio, vid, tgt, swaps[mpos], cfg.features.audio_extra, visual_grid)
            if mask_rng is not None:
                audio = mask_spectrogram(audio, mask_fill, mask_rng, tc.freq_masks, tc.freq_mask_bands,
                                         tc.time_masks, tc.time_mask_frames)
            sync = contextlib.nullcontext() if micro == tc.accumulate - 1 or not env.distributed else net.no_sync()
            with sync:
                with autocast(env.device, use_amp):
                    out = net(audio, vid)
                loss = loss_fn(out.float(), tgt) / tc.accumulate
                if state.scaler is not None:
                    state.scaler.scale(loss).backward()
                else:
                    loss.backward()
            seen += loss.detach().double().cpu()
        if env.distributed:
            import torch.distributed as dist

            dist.all_reduce(seen)
            seen /= env.world_size
        if not torch.isfinite(seen):
            raise NonFiniteLossError(f"non-finite training loss ({float(seen)}) at epoch {epoch + 1}, step {step + 1} "
                                     f"(global step {state.global_step + 1}); training stopped")
        state.optimizer_step(model, tc.grad_clip)
        loss_sum += seen
    return float(loss_sum) / max(1, len(batches))


def _score(metrics: dict, key: str) -> float:
    v = metrics.get(key, float("nan"))
    return -math.inf if v is None or not math.isfinite(v) else float(v)


def validate(model: nn.Module, val_set: ClipArrays, cfg: Config, device: torch.device,
             loss_fn: nn.Module) -> tuple[dict[str, Any], float]:
    """Validation loss and metrics for the epoch log (``{"val_loss", "val"}``) and the selection score
    (``train.select_metric``; -inf when undefined)."""
    val_loss, metrics, _ = evaluate(model, val_set, cfg, device, loss_fn)
    return {"val_loss": val_loss, "val": {k: metrics[k] for k in METRIC_KEYS}}, _score(metrics, cfg.train.select_metric)


class EpochLogger:
    """Writes each epoch's record to ``log.jsonl`` and TensorBoard (rank 0 only).

    Args:
        run: the run folder.
        tensorboard: also write TensorBoard events.
        purge_step: on resume, TensorBoard events after this step are dropped.
        n_epochs: the run's epochs (for the log line).
    """

    def __init__(self, run: RunFolder, tensorboard: bool, purge_step: int | None, n_epochs: int):
        self.run, self.n_epochs, self.writer = run, n_epochs, None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.tensorboard_dir), purge_step=purge_step)

    def log(self, record: dict[str, Any]) -> None:
        self.run.append_log(record)
        if self.writer is not None:
            step = record["step"]
            self.writer.add_scalar("loss/train", record["train_loss"], step)
            for k, v in record.get("val", {}).items():
                if v is not None and math.isfinite(v):
                    self.writer.add_scalar(f"val/{k}", v, step)
            if "val_loss" in record and math.isfinite(record["val_loss"]):
                self.writer.add_scalar("loss/val", record["val_loss"], step)
            self.writer.flush()
        log.info("epoch %d/%d  loss %.4f  %s  (%.1f s)", record["epoch"], self.n_epochs, record["train_loss"],
                 " ".join(f"{k} {v:.3f}" for k, v in record.get("val", {}).items() if v is not None),
                 record["epoch_time_s"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _swap_some(audio, video, targets, flags: np.ndarray, audio_extra, visual_grid):
    """Mirror the clips of a batch whose flag is set (left-right swap augmentation)."""
    from avseld.augment import swap_left_right

    mask = torch.from_numpy(np.asarray(flags, dtype=bool)).to(audio.device)
    if not bool(mask.any()):
        return audio, video, targets
    a, v, t = swap_left_right(audio[mask], None if video is None else video[mask], targets[mask],
                              audio_extra=tuple(audio_extra), visual_grid=visual_grid)
    audio, targets = audio.clone(), targets.clone()
    audio[mask], targets[mask] = a, t
    if video is not None:
        video = video.clone()
        video[mask] = v
    return audio, video, targets


# --------------------------------------------------------------------------------------------
# Training: the whole run
# --------------------------------------------------------------------------------------------


def train(
    cfg: Config,
    model_name: str,
    seed: int,
    data_root: str | Path,
    cache_root: str | Path,
    runs_root: str | Path,
    run_id: str | None = None,
    resume: bool = False,
    workdir: str | Path | None = None,
) -> Path:
    """Train ``model_name`` on the cached features of ``data_root``; predict dev-test; return the run dir.

    ``cfg`` is taken as resolved: callers apply the system's config (:meth:`avseld.systems.System.config`)
    themselves (the CLI and the study do). Under ``torchrun`` every process calls this; rank 0
    logs, checkpoints and predicts.

    Args:
        cfg: the configuration (profile + overrides).
        model_name: registered variant.
        seed: seeds model initialisation, batch order, dropout and augmentation.
        data_root: dataset root (DCASE layout); used to build a missing feature cache and as the
            reference folder of ``metrics.json``.
        cache_root: feature-cache root.
        runs_root: where run folders go.
        run_id: folder name (default :func:`avseld.runs.run_id`, the study's).
        resume: continue from ``checkpoints/last.pt`` (a finished run is returned unchanged).
        workdir: the folder ``metrics.json`` names paths relative to (default: the current directory).

    Raises:
        ConfigError: the run folder exists and ``resume`` is False, or bad training settings.
        NonFiniteLossError: the loss became non-finite (``last.pt`` of the previous epoch is kept).
    """
    env = setup_distributed(cfg.train.device)
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data_root, cache_root, runs_root = Path(data_root), Path(cache_root), Path(runs_root)
    cfg = cfg.with_overrides({"model.name": model_name, "train.seed": int(seed)})
    run = RunFolder(runs_root / (run_id or runs.run_id(cfg, seed)))
    opened = open_run(run, cfg, resume, env)
    if opened is None:
        return run.path
    cfg, resumed = opened
    cfg = cfg.with_overrides({"data.root": str(data_root), "data.cache_dir": str(cache_root), "data.runs_dir": str(runs_root)})
    tc = cfg.train
    check_train_settings(tc, env)

    cache_dir = feature_cache_dir(cfg, cache_root)
    if env.is_main:
        cache_dir = ensure_feature_cache(cfg, data_root, cache_root, need=(*cfg.data.train_splits, *cfg.data.test_splits))
    barrier(env)
    video = uses_video(model_name)
    train_all, train_set, val_set = training_sets(cfg, cache_dir, video)

    model = build_train_model(cfg, model_name, seed, train_all, cache_dir, env.device)
    use_amp = (tc.amp and env.device.type == "cuda") or (tc.cpu_bf16 and env.device.type == "cpu")
    state = TrainState.build(model, tc, len(train_set) // tc.batch_size, env.device, use_amp)
    loss_fn = ADPITLoss(mask_onscreen=tc.onscreen_mask, distance_scale_m=tc.distance_scale_m, layout=model.layout)
    mask_fill = None
    if tc.freq_masks > 0 or tc.time_masks > 0:
        from avseld.cache import audio_stats

        mask_fill = torch.from_numpy(audio_stats(cache_dir, cfg.data.train_splits)[0])
    if resumed is not None:
        state.restore(model, resumed, run.checkpoint("last"), env.device)
        log.info("resuming %s after epoch %d", run.path, state.epoch)
        if env.is_main:  # drop log lines of epochs the checkpoint does not contain
            run.truncate_log(state.epoch)
    else:
        torch.manual_seed(seed + 7919 * env.rank)  # per-rank dropout streams; rank 0 = single process
    if env.is_main:
        run.save_config(cfg)
        run.save_model_args(model.model_name, model.model_kwargs)

    net = distribute(model, env)
    logger = EpochLogger(run, env.is_main and tc.tensorboard, state.global_step if resumed is not None else None,
                         tc.epochs)
    meta = {"config_yaml": cfg.to_yaml(), "seed": int(seed), "run_id": run.id}
    try:
        while state.epoch < tc.epochs:
            t0 = time.perf_counter()
            try:
                train_loss = train_one_epoch(net, train_set, state, loss_fn, cfg, env, seed, video, use_amp, mask_fill)
            except NonFiniteLossError as e:
                last = run.checkpoint("last")
                raise NonFiniteLossError(str(e) + (f", the last good checkpoint {last} (after epoch {state.epoch}) is kept"
                                                   if last.is_file() else ", no checkpoint had been written yet")) from None
            state.end_epoch()
            state.wall_s += time.perf_counter() - t0
            if env.is_main:
                record: dict[str, Any] = {"epoch": state.epoch, "step": state.global_step, "train_loss": train_loss,
                                          "lr": state.optimizer.param_groups[0]["lr"]}
                score = None
                if val_set is not None:
                    val, score = validate(state.evaluated(model), val_set, cfg, env.device, loss_fn)
                    record.update(val)
                improved = state.select(score)
                record.update({"best_epoch": state.best_epoch, "epoch_time_s": time.perf_counter() - t0})
                logger.log(record)
                state.save(run.checkpoint("best"), run.checkpoint("last"), model, improved, env.device, meta,
                           env.world_size)
            barrier(env)
    finally:
        logger.close()
    if env.is_main:
        if cfg.eval.onscreen_decision == "threshold" and cfg.eval.tune_onscreen_threshold and val_set is not None:
            tune_onscreen_threshold(run.path, val_set, cfg, env.device)
        predict(run.path, split="dev-test", data_root=data_root, workdir=workdir)
    barrier(env)
    return run.path


