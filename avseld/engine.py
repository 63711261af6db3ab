"""Training, evaluation and prediction: ``train`` / ``evaluate`` / ``predict`` over the feature cache.

The loop follows the official DCASE 2025 baseline (``main.py`` of partha2409/DCASE2025_seld_baseline:
Adam, ADPIT, drop-last batches, best checkpoint by F20) with what it lacks: validation on held-out
training rooms (dev-test selection only behind ``train.select_on=dev-test``), atomic best/last
checkpoints loadable with ``weights_only=True``, exact resume, a non-finite-loss stop, JSON-lines and
TensorBoard logs, mixed precision on GPU, and DistributedDataParallel under ``torchrun``.

Run directory ``<runs_root>/<run_id>/``: ``config.yaml`` (resolved), ``checkpoints/best.pt`` and
``last.pt``, ``log.jsonl`` (one line per epoch), ``tensorboard/``, ``predictions/<split>/<clip>.csv``,
``metrics.json`` (dev-test scores and provenance).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avseld.atomic import write_json_atomic, write_text_atomic
from avseld.batches import ClipArrays, epoch_batches, load_clip_arrays, split_by_rooms, swap_flags
from avseld.cache import feature_cache_dir, feature_key
from avseld.checkpoint import library_versions, load_checkpoint, model_from_checkpoint, load_model_state, save_checkpoint
from avseld.config import Config, load_config_file
from avseld.decode import decode_output, write_predictions
from avseld.errors import AvseldError, ConfigError, DataError
from avseld.losses import ADPITLoss
from avseld.models import build_model_from_config, uses_video

log = logging.getLogger(__name__)

METRIC_KEYS = ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")


class NonFiniteLossError(AvseldError):
    """Training stopped because the loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Devices and processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistEnv:
    """Where this process runs: world size, rank, local rank and device."""

    world_size: int
    rank: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"config key 'train.device': unknown device '{name}'") from None


def setup_distributed(device: str = "auto") -> DistEnv:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (gloo on CPU, NCCL on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(1, 0, 0, resolve_device(device))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(world, rank, local, dev)


def _barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


# --------------------------------------------------------------------------------------------
# Evaluation and prediction on arrays
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_outputs(model: nn.Module, arrays: ClipArrays, device: torch.device, batch_size: int = 64,
                    amp: bool = False, mirror: bool = False, audio_extra: tuple[str, ...] = (),
                    visual_grid: tuple[int, int] | None = None) -> np.ndarray:
    """Model outputs for every clip of ``arrays``: (N, 50, width) float32 numpy (model in eval mode).

    ``mirror``: test-time mirroring; each clip's output is the mean of the output for the clip and the
    output for its left-right mirror (:func:`avseld.augment.swap_left_right` of the inputs, with the
    output's y negated back), ``audio_extra`` and ``visual_grid`` as in :func:`swap_left_right`.
    """
    from avseld.augment import swap_left_right

    model.eval()
    video_needed = getattr(model, "uses_video", True)
    layout = _unwrap(model).layout
    y_field = layout.fields.index("y")
    outs = []
    for start in range(0, len(arrays), batch_size):
        pos = np.arange(start, min(start + batch_size, len(arrays)))
        audio, video, _ = arrays.fetch(pos, device, with_video=video_needed)
        with _autocast(device, amp):
            out = model(audio, video).float()
            if mirror:
                a, v, _ = swap_left_right(audio, video, None, audio_extra=tuple(audio_extra), visual_grid=visual_grid)
                back = layout.unflatten(model(a, v).float()).clone()  # (B, T, tracks, fields, classes)
                back[..., y_field, :] = -back[..., y_field, :]
                out = 0.5 * (out + back.reshape(out.shape))
        outs.append(out.cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 50, layout.dim), np.float32)


def config_outputs(model: nn.Module, arrays: ClipArrays, cfg: Config, device: torch.device) -> np.ndarray:
    """:func:`predict_outputs` with the batch size and test-time mirroring of ``cfg``."""
    grid = tuple(cfg.features.fullview_grid) if cfg.features.visual_mode == "fullview" else None
    return predict_outputs(model, arrays, device, cfg.train.eval_batch_size, mirror=cfg.eval.mirror_tta,
                           audio_extra=tuple(cfg.features.audio_extra), visual_grid=grid)


def evaluate(model: nn.Module, arrays: ClipArrays, cfg: Config, device: torch.device,
             loss_fn: nn.Module | None = None) -> tuple[float, dict[str, Any], dict[str, np.ndarray]]:
    """Loss, SELD metrics and decoded predictions of ``model`` on a labelled set.

    Returns:
        (mean loss over clips or NaN, metrics dict of :func:`avseld.metrics.compute_seld_metrics`,
        clip name -> predicted label array).
    """
    from avseld.metrics import compute_seld_metrics, metric_kwargs

    outputs = config_outputs(model, arrays, cfg, device)
    names = arrays.clip_names
    loss = float("nan")
    if loss_fn is not None and arrays.targets is not None and len(arrays):
        tgt = torch.from_numpy(np.ascontiguousarray(arrays.targets[arrays.rows], dtype=np.float32))
        with torch.no_grad():
            loss = float(loss_fn(torch.from_numpy(outputs), tgt))
    preds = {n: decode_output(o, cfg.eval) for n, o in zip(names, outputs)}
    metrics = compute_seld_metrics(arrays.ref_labels(), preds, **metric_kwargs(cfg.eval))
    return loss, metrics, preds


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision: float16/bfloat16 on a GPU, bfloat16 on a CPU; a no-op when not enabled."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if enabled and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


# --------------------------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------------------------


def default_run_id(cfg: Config, model_name: str, seed: int) -> str:
    """``<model>-seed<seed>-<hash of the feature cache key and the model, train and eval sections>``
    (the cache key carries the extraction code's version: new extraction code, new runs)."""
    blob = f"{feature_key(cfg)}|{cfg.section_hash('model', 'train', 'eval')}"
    return f"{model_name}-seed{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _git_commit() -> str:
    """``<commit>`` or ``<commit>-dirty`` of the source tree (:func:`avseld.provenance.git_state`)."""
    from avseld.provenance import git_state

    g = git_state()
    return g["commit"] + ("-dirty" if g["dirty"] else "")


def _ensure_cache(cfg: Config, data_root: Path, cache_root: Path, env: DistEnv) -> Path:
    """Build (or finish an interrupted build of) the feature cache when a train or test split is missing."""
    from avseld.cache import missing_splits

    cache_dir = feature_cache_dir(cfg, cache_root)
    if env.is_main and missing_splits(cache_dir, (*cfg.data.train_splits, *cfg.data.test_splits)):
        from avseld.cache import build_feature_cache

        log.info("feature cache %s lacks a split: extracting features from %s", cache_dir, data_root)
        cache_dir = Path(build_feature_cache(cfg, data_root, cache_root))
    _barrier(env)
    return cache_dir


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append_log(path: Path, record: dict) -> None:
    lines = [json.dumps(r, allow_nan=True) for r in _read_log(path)] + [json.dumps(record, allow_nan=True)]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def build_optimizer(model: nn.Module, tc) -> torch.optim.Optimizer:
    """Adam (baseline), AdamW (decoupled weight decay) or plain SGD over every parameter."""
    if tc.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def warmup_cosine_factor(step: int, total: int, warmup_frac: float, final_ratio: float) -> float:
    """lr multiplier at optimizer step ``step`` (0-based) of ``total``: linear warm-up from
    1/warmup_steps to 1 over ``round(warmup_frac * total)`` steps, then cosine from 1 to ``final_ratio``
    at the last step."""
    warm = max(0, round(warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    span = max(1, total - warm - 1)
    progress = min(1.0, (step - warm) / span)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, tc, steps_per_epoch: int):
    """The learning-rate schedule of ``train.scheduler`` (None for a constant rate).

    ``cosine`` steps once per epoch; ``warmup_cosine`` once per optimizer step over
    ``epochs x steps_per_epoch`` steps (:func:`warmup_cosine_factor`).
    """
    if tc.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tc.epochs)
    if tc.scheduler == "warmup_cosine":
        total = max(1, tc.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, total, tc.warmup_frac, tc.lr_final_ratio))
    return None


def _score(metrics: dict, key: str) -> float:
    v = metrics.get(key, float("nan"))
    return -math.inf if v is None or not math.isfinite(v) else float(v)


def train(
    cfg: Config,
    model_name: str,
    seed: int,
    data_root: str | Path,
    cache_root: str | Path,
    runs_root: str | Path,
    run_id: str | None = None,
    resume: bool = False,
) -> Path:
    """Train ``model_name`` on the cached features of ``data_root``; predict dev-test; return the run dir.

    ``cfg`` is taken as resolved: callers apply :func:`avseld.models.variant_config_overrides`
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
        run_id: folder name (default :func:`default_run_id`).
        resume: continue from ``checkpoints/last.pt`` (a finished run is returned unchanged).

    Raises:
        ConfigError: the run folder exists and ``resume`` is False, or bad training settings.
        NonFiniteLossError: the loss became non-finite (``last.pt`` of the previous epoch is kept).
    """
    env = setup_distributed(cfg.train.device)
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data_root, cache_root, runs_root = Path(data_root), Path(cache_root), Path(runs_root)
    cfg = cfg.with_overrides({"model.name": model_name, "train.seed": int(seed)})
    run_id = run_id or default_run_id(cfg, model_name, seed)
    run_dir = runs_root / run_id
    ckpt_dir = run_dir / "checkpoints"
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"

    state: dict[str, Any] | None = None
    if resume and (run_dir / "metrics.json").is_file():
        log.info("%s is finished; nothing to resume", run_dir)
        return run_dir
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
        saved = load_config_file(run_dir / "config.yaml")
        sections = ("features", "model", "train", "eval")
        if saved.section_hash(*sections) != cfg.section_hash(*sections):
            log.warning("resuming %s with its saved config.yaml (the given config differs)", run_dir)
        cfg = saved
    elif resume:  # stopped before its first checkpoint: start again from scratch
        if env.is_main:
            (run_dir / "log.jsonl").unlink(missing_ok=True)
            shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
    elif run_dir.exists() and (last_path.is_file() or (run_dir / "log.jsonl").is_file()):
        raise ConfigError(f"{run_dir}: run folder exists; pass --resume to continue it or choose another --run-id")
    cfg = cfg.with_overrides({"data.root": str(data_root), "data.cache_dir": str(cache_root), "data.runs_dir": str(runs_root)})
    tc = cfg.train
    if tc.epochs < 1 or tc.batch_size < 1:
        raise ConfigError("config keys 'train.epochs' and 'train.batch_size' must be positive")
    if tc.batch_size % (env.world_size * tc.accumulate) or tc.accumulate < 1:
        raise ConfigError(f"config key 'train.batch_size': {tc.batch_size} is not divisible by {env.world_size} "
                          f"processes x {tc.accumulate} accumulation steps")

    cache_dir = _ensure_cache(cfg, data_root, cache_root, env)
    video = uses_video(model_name)
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

    torch.manual_seed(seed)
    model = build_model_from_config(cfg, model_name, in_channels=train_all.audio.shape[1],
                                    visual_shape=train_all.visual_shape).to(env.device)
    if tc.standardize:
        from avseld.cache import audio_stats

        model.encoder.set_input_stats(*audio_stats(cache_dir, cfg.data.train_splits,
                                                   level_difference=model.encoder.level_difference))
    optimizer = build_optimizer(model, tc)
    steps_per_epoch = len(train_set) // tc.batch_size
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch)
    use_amp = (tc.amp and env.device.type == "cuda") or (tc.cpu_bf16 and env.device.type == "cpu")
    scaler = torch.amp.GradScaler("cuda") if use_amp and env.device.type == "cuda" and not torch.cuda.is_bf16_supported() else None
    loss_fn = ADPITLoss(mask_onscreen=tc.onscreen_mask, distance_scale_m=tc.distance_scale_m)

    start_epoch, global_step, best_score, best_epoch, wall = 0, 0, -math.inf, 0, 0.0
    if state is not None:
        load_model_state(model, state, last_path)
        optimizer.load_state_dict(state["optimizer_state"])
        if scheduler is not None and state.get("scheduler_state") is not None:
            scheduler.load_state_dict(state["scheduler_state"])
        if scaler is not None and state.get("scaler_state") is not None:
            scaler.load_state_dict(state["scaler_state"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        best_score, best_epoch, wall = float(state["best_score"]), int(state["best_epoch"]), float(state["train_wall_s"])
        torch.set_rng_state(state["rng_torch"])
        if env.device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], env.device)
        log.info("resuming %s after epoch %d", run_dir, start_epoch)
        if env.is_main:  # drop log lines of epochs the checkpoint does not contain
            lines = [r for r in _read_log(run_dir / "log.jsonl") if r.get("epoch", 0) <= start_epoch]
            write_text_atomic(run_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    else:
        torch.manual_seed(seed + 7919 * env.rank)  # per-rank dropout streams; rank 0 = single process
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")

    net: nn.Module = model
    if env.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                  find_unused_parameters=bool(getattr(model, "has_unused_parameters", False)))
    writer = None
    if env.is_main and tc.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=global_step if state is not None else None)

    visual_grid = tuple(cfg.features.fullview_grid) if cfg.features.visual_mode == "fullview" else None
    meta = {"config_yaml": cfg.to_yaml(), "seed": int(seed), "run_id": run_id}
    try:
        for epoch in range(start_epoch, tc.epochs):
            t0 = time.perf_counter()
            net.train()
            batches = epoch_batches(len(train_set), tc.batch_size, epoch, seed, env.world_size, env.rank)
            swaps = swap_flags(len(train_set), epoch, seed) if tc.lr_swap else None
            loss_sum = torch.zeros((), dtype=torch.float64)
            for step, pos in enumerate(batches):
                optimizer.zero_grad(set_to_none=True)
                seen = torch.zeros((), dtype=torch.float64)
                for micro in range(tc.accumulate):  # micro-batch m = elements m, m+A, ... of the batch
                    mpos = pos[micro::tc.accumulate]
                    audio, vid, tgt = train_set.fetch(mpos, env.device, with_video=video)
                    if swaps is not None:
                        audio, vid, tgt = _swap_some(audio, vid, tgt, swaps[mpos], cfg.features.audio_extra, visual_grid)
                    sync = contextlib.nullcontext() if micro == tc.accumulate - 1 or not env.distributed else net.no_sync()
                    with sync:
                        with _autocast(env.device, use_amp):
                            out = net(audio, vid)
                        loss = loss_fn(out.float(), tgt) / tc.accumulate
                        if scaler is not None:
                            scaler.scale(loss).backward()
                        else:
                            loss.backward()
                    seen += loss.detach().double().cpu()
                if env.distributed:
                    import torch.distributed as dist

                    dist.all_reduce(seen)
                    seen /= env.world_size
                if not torch.isfinite(seen):
                    raise NonFiniteLossError(
                        f"non-finite training loss ({float(seen)}) at epoch {epoch + 1}, step {step + 1} "
                        f"(global step {global_step + 1}); training stopped"
                        + (f", the last good checkpoint {last_path} (after epoch {epoch}) is kept"
                           if last_path.is_file() else ", no checkpoint had been written yet"))
                if scaler is not None and tc.grad_clip > 0:
                    scaler.unscale_(optimizer)
                if tc.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                loss_sum += seen
                global_step += 1
                if scheduler is not None and tc.scheduler == "warmup_cosine":
                    scheduler.step()
            if scheduler is not None and tc.scheduler == "cosine":
                scheduler.step()
            train_loss = float(loss_sum) / max(1, len(batches))
            wall += time.perf_counter() - t0
            if env.is_main:
                record: dict[str, Any] = {"epoch": epoch + 1, "step": global_step, "train_loss": train_loss,
                                          "lr": optimizer.param_groups[0]["lr"]}
                improved = True
                if val_set is not None:
                    val_loss, metrics, _ = evaluate(model, val_set, cfg, env.device, loss_fn)
                    record["val_loss"] = val_loss
                    record["val"] = {k: metrics[k] for k in METRIC_KEYS}
                    score = _score(metrics, tc.select_metric)
                    improved = score >= best_score  # ties go to the later epoch, as the baseline
                    if improved:
                        best_score, best_epoch = score, epoch + 1
                else:
                    best_epoch = epoch + 1
                record.update({"best_epoch": best_epoch, "epoch_time_s": time.perf_counter() - t0})
                _append_log(run_dir / "log.jsonl", _json_safe(record))
                if writer is not None:
                    writer.add_scalar("loss/train", train_loss, global_step)
                    for k, v in record.get("val", {}).items():
                        if v is not None and math.isfinite(v):
                            writer.add_scalar(f"val/{k}", v, global_step)
                    if "val_loss" in record and math.isfinite(record["val_loss"]):
                        writer.add_scalar("loss/val", record["val_loss"], global_step)
                    writer.flush()
                common = dict(meta, epoch=epoch + 1, global_step=global_step, best_score=best_score,
                              best_epoch=best_epoch, train_wall_s=wall, world_size=env.world_size)
                if improved:
                    save_checkpoint(best_path, model, **common)
                save_checkpoint(
                    last_path, model, **common,
                    optimizer_state=optimizer.state_dict(),
                    scheduler_state=scheduler.state_dict() if scheduler is not None else None,
                    scaler_state=scaler.state_dict() if scaler is not None else None,
                    rng_torch=torch.get_rng_state(),
                    rng_cuda=torch.cuda.get_rng_state(env.device) if env.device.type == "cuda" else None,
                )
                log.info("epoch %d/%d  loss %.4f  %s  (%.1f s)", epoch + 1, tc.epochs, train_loss,
                         " ".join(f"{k} {v:.3f}" for k, v in record.get("val", {}).items() if v is not None),
                         record["epoch_time_s"])
            _barrier(env)
    finally:
        if writer is not None:
            writer.close()
    if env.is_main:
        if cfg.eval.onscreen_decision == "threshold" and cfg.eval.tune_onscreen_threshold and val_set is not None:
            tune_onscreen_threshold(run_dir, val_set, cfg, env.device)
        predict(run_dir, split="dev-test", data_root=data_root)
    _barrier(env)
    return run_dir


# candidates of the tuned on-screen threshold; 1.0 (p > 1 never holds: every event off-screen, what the
# baseline's truncation writes) lets the validation rooms say that the on-screen output does not help
ONSCREEN_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 21))
TUNED_THRESHOLD = "onscreen_threshold.json"


def tune_onscreen_threshold(run_dir: Path, val_set: ClipArrays, cfg: Config, device: torch.device) -> float:
    """The on-screen threshold that maximises F20_on of the best checkpoint on the validation rooms
    (ties: the one closest to 0.5), written to ``<run>/onscreen_threshold.json`` with every candidate's
    score; :func:`predict` then decodes with it. Dev-test is never looked at."""
    from dataclasses import replace

    from avseld.metrics import compute_seld_metrics, metric_kwargs

    model = load_model(run_dir).to(device)
    outputs = config_outputs(model, val_set, cfg, device)
    refs = val_set.ref_labels()
    scores = {}
    for t in ONSCREEN_THRESHOLDS:
        ecfg = replace(cfg.eval, onscreen_threshold=t)
        preds = {n: decode_output(o, ecfg) for n, o in zip(val_set.clip_names, outputs)}
        scores[t] = float(compute_seld_metrics(refs, preds, **metric_kwargs(cfg.eval))["F20_on"])
    best = max(ONSCREEN_THRESHOLDS, key=lambda t: (scores[t], -abs(t - 0.5)))
    write_json_atomic(run_dir / TUNED_THRESHOLD, {"threshold": best, "val_F20_on": {str(k): v for k, v in scores.items()},
                                                  "checkpoint": "best"})
    log.info("%s: on-screen threshold %.2f (validation F20_on %.3f; 0.5 gives %.3f)", run_dir.name, best,
             scores[best], scores[0.5])
    return best


def tuned_eval(run_dir: Path, cfg: Config) -> Config:
    """``cfg`` with the run's tuned on-screen threshold applied, when it has one."""
    path = Path(run_dir) / TUNED_THRESHOLD
    if cfg.eval.onscreen_decision == "threshold" and cfg.eval.tune_onscreen_threshold and path.is_file():
        return cfg.with_overrides({"eval.onscreen_threshold": float(json.loads(path.read_text())["threshold"])})
    return cfg


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
# Prediction from a run folder
# --------------------------------------------------------------------------------------------


def load_model(run_dir: str | Path, which: str = "best") -> nn.Module:
    """The model of a run, rebuilt from ``checkpoints/<which>.pt``, in eval mode on CPU."""
    path = Path(run_dir) / "checkpoints" / f"{which}.pt"
    model = model_from_checkpoint(load_checkpoint(path), path)
    return model.eval()


def predict(
    run_dir: str | Path,
    split: str = "dev-test",
    data_root: str | Path | None = None,
    cache_root: str | Path | None = None,
    checkpoint: str = "best",
    video_control: str | None = None,
    onscreen_decision: str | None = None,
) -> Path:
    """Write one DCASE CSV per clip of ``split`` to ``<run_dir>/predictions/<split>/``.

    ``video_control`` evaluates a video model with its picture taken away: ``"zeros"`` (every visual
    feature 0) or ``"shuffled"`` (each clip gets the visual features of another clip of the split, a
    fixed derangement); predictions go to ``predictions/<split>.video-<control>/`` and scores to
    ``metrics_<split>.video-<control>.json``. Whether, and how much, the picture helps is the
    difference to the ordinary predictions. ``onscreen_decision`` re-decodes with another on-screen
    rule (``"truncate"``: the baseline's) into ``predictions/<split>.onscreen-<rule>/`` (a decoding
    control: same model, same outputs).

    For a labelled split the scores go to ``metrics.json`` (dev-test) or ``metrics_<split>.json``,
    with ``ref_dir`` (``<data_root>/metadata_dev``, scoreable by ``avseld evaluate``), ``pred_dir``
    and provenance. Works on the eval layout (no labels: CSVs only).

    Args:
        run_dir: a run folder made by :func:`train`.
        split: split-folder prefix (``dev-test``, ``eval``, ...).
        data_root: dataset root (default: the one the run was trained on); features of a split
            not cached yet are extracted from it.
        cache_root: feature-cache root (default: the run's).
        checkpoint: ``best`` or ``last``.

    Returns:
        The prediction folder.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml)")
    cfg = tuned_eval(run_dir, load_config_file(cfg_path))
    data_root = Path(data_root) if data_root is not None else Path(cfg.data.root)
    cache_root = Path(cache_root) if cache_root is not None else Path(cfg.data.cache_dir)
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    model = load_model(run_dir, checkpoint).to(device)
    cache_dir = feature_cache_dir(cfg, cache_root)
    from avseld.cache import missing_splits

    if missing_splits(cache_dir, [split]):
        from avseld.cache import build_feature_cache

        log.info("split '%s' is not cached: extracting features from %s", split, data_root)
        cache_dir = Path(build_feature_cache(cfg.with_overrides({"data.root": str(data_root)}), data_root, cache_root))
    arrays = load_clip_arrays(cache_dir, split, need_video=model.uses_video)
    out_name = prediction_name(split, video_control, onscreen_decision)
    if video_control is not None:
        if not model.uses_video:
            raise ConfigError(f"{run_dir}: video_control needs a video model ({cfg.model.name} takes no video)")
        arrays = video_control_arrays(arrays, video_control)
    if onscreen_decision is not None:
        cfg = cfg.with_overrides({"eval.onscreen_decision": onscreen_decision})
    outputs = config_outputs(model, arrays, cfg, device)
    preds = {n: decode_output(o, cfg.eval) for n, o in zip(arrays.clip_names, outputs)}

    pred_dir = run_dir / "predictions" / out_name
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.tmp.", dir=pred_dir.parent if pred_dir.parent.exists() else _mk(pred_dir.parent)))
    write_predictions(tmp, preds)
    if pred_dir.exists():
        shutil.rmtree(pred_dir)
    os.replace(tmp, pred_dir)
    log.info("wrote %d prediction CSVs to %s", len(preds), pred_dir)

    if arrays.labels is not None:
        from avseld.batches import select_splits
        from avseld.cache import list_cached_splits
        from avseld.metrics import compute_seld_metrics, metric_kwargs
        from avseld.provenance import cache_digests, environment, git_state

        metrics = compute_seld_metrics(arrays.ref_labels(), preds, **metric_kwargs(cfg.eval))
        last = _peek(run_dir / "checkpoints" / f"{checkpoint}.pt")
        record = {k: metrics[k] for k in METRIC_KEYS}
        record.update({
            "classwise": metrics["classwise"],
            "n_files": metrics["n_files"],
            "split": split,
            "video_control": video_control,
            "onscreen_decision": cfg.eval.onscreen_decision,
            "onscreen_threshold": cfg.eval.onscreen_threshold,
            "ref_dir": str((data_root / "metadata_dev").resolve()),
            "pred_dir": str(pred_dir.resolve()),
            "model": cfg.model.name,
            "run_id": run_dir.name,
            "checkpoint": checkpoint,
            "best_epoch": last.get("best_epoch"),
            "provenance": {
                "git_commit": _git_commit(),
                "versions": library_versions(),
                "seed": cfg.train.seed,
                "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
                "world_size": last.get("world_size", 1),
                "train_wall_s": last.get("train_wall_s"),
                "predict_wall_s": time.perf_counter() - t0,
                "torch_threads": torch.get_num_threads(),
                "git": git_state(),
                "environment": environment(),
                "cache": cache_digests(cache_dir, select_splits(list_cached_splits(cache_dir),
                                                                (*cfg.data.train_splits, split), cache_dir)),
            },
        })
        write_json_atomic(run_dir / metrics_name(out_name), _json_safe(record))
    return pred_dir


def prediction_name(split: str, video_control: str | None = None, onscreen_decision: str | None = None) -> str:
    """The folder under ``<run>/predictions/`` that :func:`predict` writes: ``<split>``, then
    ``.video-<control>`` and ``.onscreen-<rule>`` for a control."""
    name = split
    if video_control is not None:
        name += f".video-{video_control}"
    if onscreen_decision is not None:
        name += f".onscreen-{onscreen_decision}"
    return name


def metrics_name(prediction: str) -> str:
    """The scores file of a prediction folder: ``metrics.json`` for dev-test, else ``metrics_<name>.json``."""
    return "metrics.json" if prediction == "dev-test" else f"metrics_{prediction}.json"


VIDEO_CONTROLS = ("zeros", "shuffled")


def video_control_arrays(arrays: ClipArrays, control: str, seed: int = 0) -> ClipArrays:
    """``arrays`` with the visual features of a control: ``zeros`` or ``shuffled`` (clip i gets the
    video of clip ``perm[i]``, a fixed derangement: no clip keeps its own video)."""
    from dataclasses import replace

    if control not in VIDEO_CONTROLS:
        raise ConfigError(f"unknown video control '{control}' (known: {', '.join(VIDEO_CONTROLS)})")
    if arrays.video is None:
        raise DataError("these arrays hold no video features")
    video = np.asarray(arrays.video[arrays.rows], dtype=np.float32)
    if control == "zeros":
        video = np.zeros_like(video)
    else:
        n = len(video)
        if n < 2:
            raise DataError("shuffling the video needs at least two clips")
        order = np.random.default_rng(seed).permutation(n)
        source = np.empty(n, dtype=np.int64)
        source[order] = np.roll(order, -1)  # a single cycle through a random order: no fixed point
        video = video[source]
    rows = arrays.rows
    return replace(arrays, names=arrays.clip_names, rooms=[arrays.rooms[i] for i in rows],
                   audio=np.asarray(arrays.audio[rows]), video=video,
                   targets=None if arrays.targets is None else np.asarray(arrays.targets[rows]),
                   rows=np.arange(len(rows), dtype=np.int64))


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _peek(path: Path) -> dict[str, Any]:
    try:
        ckpt = load_checkpoint(path)
    except AvseldError:
        return {}
    return {k: ckpt.get(k) for k in ("best_epoch", "world_size", "train_wall_s", "epoch")}
