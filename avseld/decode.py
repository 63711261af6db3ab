"""Model output -> label arrays -> DCASE CSVs, as the official baseline decodes Multi-ACCDOA.

Follows ``get_multiaccdoa_labels``, ``determine_similar_location``,
``get_output_dict_format_multi_accdoa`` and ``write_to_dcase_output_format`` of
partha2409/DCASE2025_seld_baseline: a track is active when |(x, y)| > 0.5; per frame and class,
active tracks closer than 15 degrees are merged (position and distance averaged, the first
track's on-screen value kept); azimuth = atan2(y, x) in degrees (not folded), rounded; distance x100
rounded to cm (both by :mod:`avseld.labels`); on-screen by integer truncation (baseline) or a threshold; source id 0. Arithmetic is
kept in float32 as in the baseline, so rounding ties fall the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from avseld.dataset import write_label_csv
from avseld.labels import m_to_cm, xy_to_azimuth
from avseld.layout import OutputLayout


def _angle_deg(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Angle between 2-D vectors in degrees (float32, normalised with a 1e-10 guard as the baseline)."""
    n1 = np.sqrt(x1**2 + y1**2 + 1e-10)
    n2 = np.sqrt(x2**2 + y2**2 + 1e-10)
    dot = np.clip((x1 / n1) * (x2 / n2) + (y1 / n1) * (y2 / n2), -1, 1)
    return np.arccos(dot) * 180 / np.pi


def decode_output(
    output,
    eval_cfg=None,
    *,
    layout: OutputLayout,
    activity_threshold: float = 0.5,
    merge_threshold_deg: float = 15.0,
    onscreen_decision: Literal["truncate", "threshold"] = "truncate",
    onscreen_threshold: float = 0.5,
) -> np.ndarray:
    """Decode one clip's Multi-ACCDOA output into a label array.

    Args:
        output: (T, layout.dim) model output (numpy or torch).
        eval_cfg: an :class:`avseld.config.EvalConfig`; when given, its fields replace the keyword
            arguments below (all but ``layout``).
        layout: the model's output layout (``model.layout``); a width that does not match it is a
            ValueError (the width alone never decides the layout).
        activity_threshold: a track is active when |(x, y)| exceeds it.
        merge_threshold_deg: same-class active tracks closer than this are merged.
        onscreen_decision: ``"truncate"`` writes ``int(p)`` (the baseline: 0 unless p == 1);
            ``"threshold"`` writes ``p > onscreen_threshold``.
        onscreen_threshold: see above.

    Returns:
        (n, 6) float64 label array ``frame, class, source=0, azimuth deg, distance cm, onscreen``.
    """
    if eval_cfg is not None:
        activity_threshold = eval_cfg.activity_threshold
        merge_threshold_deg = eval_cfg.merge_threshold_deg
        onscreen_decision = eval_cfg.onscreen_decision
        onscreen_threshold = eval_cfg.onscreen_threshold
    if onscreen_decision not in ("truncate", "threshold"):
        raise ValueError(f"onscreen_decision must be 'truncate' or 'threshold', got {onscreen_decision!r}")
    if hasattr(output, "detach"):
        output = output.detach().float().cpu().numpy()
    output = np.asarray(output, dtype=np.float32)
    if output.ndim != 2:
        raise ValueError(f"decode_output expects one clip (T, width), got shape {output.shape}")
    xy, dist, onscreen = layout.split(output)  # (T, N, 2, K), (T, N, K), (T, N, K) | None
    x, y = xy[:, :, 0], xy[:, :, 1]  # (T, N, K)
    dist = np.maximum(dist, 0)
    if onscreen is None:
        onscreen = np.zeros_like(dist)
    active = np.sqrt(x**2 + y**2) > activity_threshold  # (T, N, K)
    n_tracks = layout.n_tracks
    pairs = [(i, (i + 1) % n_tracks) for i in range(n_tracks)] if n_tracks > 1 else []
    similar = {
        p: active[:, p[0]] & active[:, p[1]] & (_angle_deg(x[:, p[0]], y[:, p[0]], x[:, p[1]], y[:, p[1]]) < merge_threshold_deg)
        for p in pairs
    }
    rows: list[tuple[int, int, float, float, float]] = []  # frame, class, x, y, dist, onscreen

    def emit(f: int, k: int, xv, yv, dv, ov) -> None:
        rows.append((f, k, xv, yv, dv, ov))

    frames, classes = np.nonzero(active.any(axis=1))
    for f, k in zip(frames.tolist(), classes.tolist()):
        flags = [bool(similar[p][f, k]) for p in pairs]
        n_sim = sum(flags)
        if n_sim == 0:
            for n in range(n_tracks):
                if active[f, n, k]:
                    emit(f, k, x[f, n, k], y[f, n, k], dist[f, n, k], onscreen[f, n, k])
        elif n_sim == 1 and n_tracks == 3:
            a, b = pairs[flags.index(True)]
            other = 3 - a - b
            if active[f, other, k]:
                emit(f, k, x[f, other, k], y[f, other, k], dist[f, other, k], onscreen[f, other, k])
            emit(f, k, (x[f, a, k] + x[f, b, k]) / 2, (y[f, a, k] + y[f, b, k]) / 2,
                 (dist[f, a, k] + dist[f, b, k]) / 2, onscreen[f, a, k])
        else:  # two or more similar pairs: one event, averaged over all tracks
            emit(f, k, x[f, :, k].sum(dtype=np.float32) / np.float32(n_tracks),
                 y[f, :, k].sum(dtype=np.float32) / np.float32(n_tracks),
                 dist[f, :, k].sum(dtype=np.float32) / np.float32(n_tracks), onscreen[f, 0, k])
    out = np.zeros((len(rows), 6), dtype=np.float64)
    for i, (f, k, xv, yv, dv, ov) in enumerate(rows):
        az = xy_to_azimuth(np.float32(xv), np.float32(yv))  # float32, as the baseline
        on = int(ov) if onscreen_decision == "truncate" else int(float(ov) > onscreen_threshold)
        out[i] = (f, k, 0, round(float(az)), round(float(m_to_cm(dv))), on)
    return out


def decode_batch(outputs, eval_cfg=None, *, layout: OutputLayout, **kwargs) -> list[np.ndarray]:
    """Decode (B, T, layout.dim) outputs into B label arrays (see :func:`decode_output`)."""
    if hasattr(outputs, "detach"):
        outputs = outputs.detach().float().cpu().numpy()
    return [decode_output(o, eval_cfg, layout=layout, **kwargs) for o in outputs]


def write_predictions(pred_dir: str | Path, predictions: dict[str, np.ndarray]) -> Path:
    """Write one DCASE CSV per clip (``<pred_dir>/<name>.csv``), atomically; returns ``pred_dir``."""
    pred_dir = Path(pred_dir)
    pred_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in predictions.items():
        write_label_csv(pred_dir / f"{name}.csv", rows)
    return pred_dir
