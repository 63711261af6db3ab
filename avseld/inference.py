"""Inference: model outputs, evaluation and prediction from a run folder.

``evaluate`` scores a model on cached arrays (the engine's validation uses it); ``predict`` writes a
run's DCASE CSVs and its metrics record; the video controls (zeroed or another clip's video) and the
on-screen threshold tuned on the validation rooms live here too.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avseld.atomic import write_json_atomic
from avseld.batches import ClipArrays, load_clip_arrays
from avseld.cache import ensure_feature_cache
from avseld.checkpoint import library_versions, load_checkpoint, model_from_checkpoint
from avseld.config import Config
from avseld.decode import decode_output
from avseld.devices import autocast, resolve_device, unwrap
from avseld.errors import AvseldError, ConfigError, DataError
from avseld.runs import RunFolder, prediction_name

log = logging.getLogger(__name__)

METRIC_KEYS = ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")


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
    layout = unwrap(model).layout
    y_field = layout.fields.index("y")
    outs = []
    for start in range(0, len(arrays), batch_size):
        pos = np.arange(start, min(start + batch_size, len(arrays)))
        audio, video, _ = arrays.fetch(pos, device, with_video=video_needed)
        with autocast(device, amp):
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
    preds = {n: decode_output(o, cfg.eval, layout=unwrap(model).layout) for n, o in zip(names, outputs)}
    metrics = compute_seld_metrics(arrays.ref_labels(), preds, **metric_kwargs(cfg.eval))
    return loss, metrics, preds


def _git_commit(g: dict[str, Any]) -> str:
    """``<commit>`` or ``<commit>-dirty`` of a :func:`avseld.provenance.git_state` record."""
    return g["commit"] + ("-dirty" if g["dirty"] else "")


# candidates of the tuned on-screen threshold; 1.0 (p > 1 never holds: every event off-screen, what the
# baseline's truncation writes) lets the validation rooms say that the on-screen output does not help
ONSCREEN_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 21))


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
        preds = {n: decode_output(o, ecfg, layout=model.layout) for n, o in zip(val_set.clip_names, outputs)}
        scores[t] = float(compute_seld_metrics(refs, preds, **metric_kwargs(cfg.eval))["F20_on"])
    best = max(ONSCREEN_THRESHOLDS, key=lambda t: (scores[t], -abs(t - 0.5)))
    write_json_atomic(RunFolder(run_dir).threshold_path, {"threshold": best, "val_F20_on": {str(k): v for k, v in scores.items()},
                                                          "checkpoint": "best"})
    log.info("%s: on-screen threshold %.2f (validation F20_on %.3f; 0.5 gives %.3f)", run_dir.name, best,
             scores[best], scores[0.5])
    return best


def tuned_eval(run_dir: Path, cfg: Config) -> Config:
    """``cfg`` with the run's tuned on-screen threshold applied, when it has one."""
    path = RunFolder(run_dir).threshold_path
    if cfg.eval.onscreen_decision == "threshold" and cfg.eval.tune_onscreen_threshold and path.is_file():
        return cfg.with_overrides({"eval.onscreen_threshold": float(json.loads(path.read_text())["threshold"])})
    return cfg


# --------------------------------------------------------------------------------------------
# Prediction from a run folder
# --------------------------------------------------------------------------------------------


def load_model(run_dir: str | Path, which: str = "best") -> nn.Module:
    """The model of a run, rebuilt from ``checkpoints/<which>.pt``, in eval mode on CPU."""
    path = RunFolder(run_dir).checkpoint(which)
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
    workdir: str | Path | None = None,
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
    with ``ref_dir`` (``<data_root>/metadata_dev``) and ``pred_dir`` relative to ``workdir`` (from
    there scoreable by ``avseld evaluate``; :meth:`avseld.runs.RunFolder.scored_folders`) and provenance. Works on the eval layout (no labels: CSVs only).

    Args:
        run_dir: a run folder made by :func:`train`.
        split: split-folder prefix (``dev-test``, ``eval``, ...).
        data_root: dataset root (default: the one the run was trained on); features of a split
            not cached yet are extracted from it.
        cache_root: feature-cache root (default: the run's).
        checkpoint: ``best`` or ``last``.
        workdir: the folder the metrics record names paths relative to (default: the current directory).

    Returns:
        The prediction folder.
    """
    run = RunFolder(run_dir)
    run_dir = run.path
    cfg = tuned_eval(run_dir, run.read_config())
    data_root = Path(data_root) if data_root is not None else Path(cfg.data.root)
    cache_root = Path(cache_root) if cache_root is not None else Path(cfg.data.cache_dir)
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    model = load_model(run_dir, checkpoint).to(device)
    cache_dir = ensure_feature_cache(cfg.with_overrides({"data.root": str(data_root)}), data_root, cache_root, need=[split])
    arrays = load_clip_arrays(cache_dir, split, need_video=model.uses_video)
    out_name = prediction_name(split, video_control, onscreen_decision)
    if video_control is not None:
        if not model.uses_video:
            raise ConfigError(f"{run_dir}: video_control needs a video model ({cfg.model.name} takes no video)")
        arrays = video_control_arrays(arrays, video_control)
    if onscreen_decision is not None:
        cfg = cfg.with_overrides({"eval.onscreen_decision": onscreen_decision})
    outputs = config_outputs(model, arrays, cfg, device)
    preds = {n: decode_output(o, cfg.eval, layout=model.layout) for n, o in zip(arrays.clip_names, outputs)}

    pred_dir = run.write_predictions(out_name, preds)
    log.info("wrote %d prediction CSVs to %s", len(preds), pred_dir)

    if arrays.labels is not None:
        from avseld.batches import select_splits
        from avseld.cache import list_cached_splits
        from avseld.metrics import compute_seld_metrics, metric_kwargs
        from avseld.provenance import cache_digests, environment, git_state

        metrics = compute_seld_metrics(arrays.ref_labels(), preds, **metric_kwargs(cfg.eval))
        last = _peek(run.checkpoint(checkpoint))
        git = git_state()  # two git subprocesses: once per record
        record = {k: metrics[k] for k in METRIC_KEYS}
        record.update({
            "classwise": metrics["classwise"],
            "n_files": metrics["n_files"],
            "split": split,
            "video_control": video_control,
            "onscreen_decision": cfg.eval.onscreen_decision,
            "onscreen_threshold": cfg.eval.onscreen_threshold,
            **run.folder_fields(out_name, data_root / "metadata_dev", Path.cwd() if workdir is None else workdir),
            "model": cfg.model.name,
            "run_id": run_dir.name,
            "checkpoint": checkpoint,
            "best_epoch": last.get("best_epoch"),
            "provenance": {
                "git_commit": _git_commit(git),
                "versions": library_versions(),
                "seed": cfg.train.seed,
                "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
                "world_size": last.get("world_size", 1),
                "train_wall_s": last.get("train_wall_s"),
                "predict_wall_s": time.perf_counter() - t0,
                "torch_threads": torch.get_num_threads(),
                "git": git,
                "environment": environment(),
                "cache": cache_digests(cache_dir, select_splits(list_cached_splits(cache_dir),
                                                                (*cfg.data.train_splits, split), cache_dir)),
            },
        })
        run.write_metrics(out_name, record)
    return pred_dir


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


def _peek(path: Path) -> dict[str, Any]:
    try:
        ckpt = load_checkpoint(path)
    except AvseldError:
        return {}
    return {k: ckpt.get(k) for k in ("best_epoch", "world_size", "train_wall_s", "epoch")}
