"""Scoring: per-clip sufficient statistics, macro/micro averages and the jackknife (see the package doc)."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from avseld.errors import DataError
from avseld.layout import MAX_TRACKS_PER_CLASS_FRAME, N_CLASSES

log = logging.getLogger(__name__)

METRIC_KEYS: tuple[str, ...] = ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")
EPS = float(np.finfo(float).eps)  # the official code adds this to every denominator

# Per-class sufficient statistics (last axis of the statistics arrays).
TP, TP_ON, FP, FN, K, ANG, DIST, REL, ON_OK = range(9)
N_STATS = 9

_FRAME, _CLASS, _SOURCE, _AZ, _DIST, _ON = range(6)


def wrap_azimuth(az: np.ndarray) -> np.ndarray:
    """Wrap azimuths (degrees) to [-180, 180) with ``(az + 180) % 360 - 180``, the first step of the
    official ``fold_az_angle`` (utils.py), same floating-point operations: 200 -> -160, 540 -> -180,
    -270 -> 90, 180 -> -180. (For azimuths a hair below -180 the rounded result can be 180.)"""
    return (np.asarray(az, dtype=np.float64) + 180) % 360 - 180


def fold_azimuth(az: np.ndarray) -> np.ndarray:
    """Fold azimuths (degrees) to the front half-plane [-90, 90] (SPEC section 1).

    :func:`wrap_azimuth`, then maps (90, 180] to ``180 - az`` and [-180, -90) to ``-180 - az``,
    with the same floating-point operations as the official ``fold_az_angle``, so any finite
    azimuth scores as officially (200 -> -20, 540 -> 0, -270 -> 90, +-180 -> 0); NaN stays NaN.
    """
    az = wrap_azimuth(az)
    return np.where(az < -90, -180 - az, np.where(az > 90, 180 - az, az))


def _cap_tracks(group: np.ndarray) -> np.ndarray:
    """At most 10 instances of one (frame, class), exactly as the official ``organize_labels``.

    A row takes its source id as track id when that id is free and below 10, else the first free
    track id (in Python's set iteration order, as officially), else it overwrites track 0.
    The result keeps the official dict insertion order, which is the order the pairing sees.

    Args:
        group: ``(n, 6)`` rows of one clip, frame, class and side, in file order, n > 10.
    """
    all_tracks = set(range(MAX_TRACKS_PER_CLASS_FRAME))
    tracks: dict[int, np.ndarray] = {}
    for row in group:
        src = row[_SOURCE]
        if src < MAX_TRACKS_PER_CLASS_FRAME and int(src) not in tracks:
            tracks[int(src)] = row
        else:
            free = list(all_tracks - tracks.keys())
            tracks[free[0] if free else 0] = row  # all 10 taken: track 0 is overwritten
    return np.stack(list(tracks.values()))


def _stack_rows(arrays: list[np.ndarray], side: int) -> np.ndarray:
    """``(n, 8)`` rows ``clip, side, frame, class, source, az, dist, on`` of one side of all clips."""
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1, 6) for a in arrays]
    lengths = [len(a) for a in arrays]
    rows = np.concatenate(arrays) if arrays else np.zeros((0, 6))
    clip = np.repeat(np.arange(len(arrays), dtype=np.float64), lengths)
    return np.column_stack([clip, np.full(len(rows), float(side)), rows])


def _segments(keys: np.ndarray) -> np.ndarray:
    """Start indices of the runs of equal rows in ``keys`` ``(n, k)`` (n >= 1)."""
    return np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])


def clip_statistics(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    doa_threshold: float = 20.0,
    dist_threshold: float = 1.0,
    full_clip: bool = False,
) -> np.ndarray:
    """Per-clip, per-class sufficient statistics of the SELD metrics.

    Args:
        pairs: one ``(reference, prediction)`` pair of ``(n, 6)`` label arrays per clip.
        doa_threshold: largest passing angular error in degrees (inclusive).
        dist_threshold: largest passing relative distance error (inclusive).
        full_clip: score every frame instead of only the frames before the last reference frame.

    Returns:
        ``(n_clips, 13, 9)`` float64 array; last axis TP, TP_on, FP, FN, K (matched pairs),
        sum of angular errors, of absolute distance errors, of relative distance errors, and the
        number of pairs with the correct on-screen flag.
    """
    n_clips = len(pairs)
    stats = np.zeros((n_clips, N_CLASSES, N_STATS))
    ref = _stack_rows([p[0] for p in pairs], 0)
    allr = np.concatenate([ref, _stack_rows([p[1] for p in pairs], 1)])
    if not full_clip:  # official: frames 0 .. last annotated reference frame - 1 of each clip
        limit = np.zeros(n_clips)
        np.maximum.at(limit, ref[:, 0].astype(np.int64), ref[:, 2])
        allr = allr[allr[:, 2] < limit[allr[:, 0].astype(np.int64)]]
    if not len(allr):
        return stats
    # Stable sort by (clip, frame, class, side): each side keeps its file order inside a group.
    allr = allr[np.lexsort((allr[:, 1], allr[:, 3], allr[:, 2], allr[:, 0]))]
    starts = _segments(allr[:, :4])
    counts = np.diff(np.r_[starts, len(allr)])
    if np.any(counts > MAX_TRACKS_PER_CLASS_FRAME):  # rare: apply the official 10-track limit
        pieces, prev = [], 0
        for s, n in zip(starts, counts):
            if n > MAX_TRACKS_PER_CLASS_FRAME:
                kept = _cap_tracks(allr[s:s + n, 2:])
                pieces += [allr[prev:s], np.column_stack([np.repeat(allr[s:s + 1, :2], len(kept), axis=0), kept])]
                prev = s + n
        allr = np.concatenate(pieces + [allr[prev:]])
    clip, side, cls = allr[:, 0].astype(np.int64), allr[:, 1], allr[:, 3].astype(np.int64)
    new_group = np.zeros(len(allr), dtype=bool)
    starts = _segments(allr[:, [0, 2, 3]])
    new_group[starts] = True
    gid = np.cumsum(new_group) - 1
    n_ref = np.bincount(gid, weights=side == 0).astype(np.int64)
    n_pred = np.bincount(gid, weights=side == 1).astype(np.int64)
    g_cell = clip[starts] * N_CLASSES + cls[starts]  # (clip, class) cell of every group
    n_cells = n_clips * N_CLASSES
    flat = stats.reshape(n_cells, N_STATS)
    flat[:, FP] = np.bincount(g_cell, weights=np.maximum(n_pred - n_ref, 0), minlength=n_cells)
    flat[:, FN] = np.bincount(g_cell, weights=np.maximum(n_ref - n_pred, 0), minlength=n_cells)

    az_f = fold_azimuth(allr[:, 5])
    # One-to-one groups: the reference row is at the group start, the prediction right after it.
    single = starts[(n_ref == 1) & (n_pred == 1)]
    ref_idx, pred_idx = [single], [single + 1]
    # One-to-many groups: the first lowest-cost row of the many side, which is what scipy's
    # linear_sum_assignment returns for a 1 x N or N x 1 cost matrix (checked in the tests).
    gs = np.flatnonzero((np.minimum(n_ref, n_pred) == 1) & (np.maximum(n_ref, n_pred) > 1))
    if len(gs):
        one_ref = n_ref[gs] == 1
        lens = np.maximum(n_ref, n_pred)[gs]
        first_many = np.where(one_ref, starts[gs] + 1, starts[gs])
        lone = np.where(one_ref, starts[gs], starts[gs] + n_ref[gs])
        offsets = np.cumsum(lens) - lens
        grp = np.repeat(np.arange(len(gs)), lens)
        many = np.repeat(first_many, lens) + np.arange(lens.sum()) - np.repeat(offsets, lens)
        cost = np.abs(az_f[many] - az_f[lone[grp]])
        hit = np.flatnonzero(cost == np.minimum.reduceat(cost, offsets)[grp])
        chosen = many[hit[np.r_[True, grp[hit][1:] != grp[hit][:-1]]]]
        ref_idx.append(np.where(one_ref, lone, chosen))
        pred_idx.append(np.where(one_ref, chosen, lone))
    # Many-to-many groups (rare): the Hungarian algorithm, on instances in file order.
    multi = np.flatnonzero((n_ref > 1) & (n_pred > 1))
    if len(multi):
        from scipy.optimize import linear_sum_assignment

        for g in multi:
            s, r = starts[g], n_ref[g]
            cost = np.abs(az_f[s:s + r, None] - az_f[None, s + r:s + r + n_pred[g]])
            rows_i, cols_i = linear_sum_assignment(cost)
            ref_idx.append(s + rows_i)
            pred_idx.append(s + r + cols_i)
    ri, pi = np.concatenate(ref_idx), np.concatenate(pred_idx)
    if len(ri):
        ang = np.abs(az_f[ri] - az_f[pi])
        dist_err = np.abs(allr[ri, 6] - allr[pi, 6])
        rel = dist_err / (allr[ri, 6] + EPS)
        on_ok = allr[ri, 7] == allr[pi, 7]
        ok = (ang <= doa_threshold) & (rel <= dist_threshold)
        cell = clip[ri] * N_CLASSES + cls[ri]
        for col, w in ((TP, ok), (TP_ON, ok & on_ok), (K, None), (ANG, ang), (DIST, dist_err),
                       (REL, rel), (ON_OK, on_ok)):
            flat[:, col] = np.bincount(cell, weights=None if w is None else w.astype(np.float64), minlength=n_cells)
    return stats


def scores_from_statistics(totals: np.ndarray, average: str = "macro") -> tuple[np.ndarray, np.ndarray]:
    """Metric values from summed statistics, with the official formulas (eps included).

    Args:
        totals: ``(..., 13, 9)`` summed per-class statistics (leading axes are batches, e.g. the
            leave-one-out subsets of the jackknife).
        average: ``"macro"`` or ``"micro"``.

    Returns:
        ``(overall, classwise)``: ``(..., 6)`` values in :data:`METRIC_KEYS` order and
        ``(..., 13, 6)`` per-class values (independent of ``average``).
    """
    t = np.asarray(totals, dtype=np.float64)
    fp_fn = 0.5 * (t[..., FP] + t[..., FN])
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = t[..., K]
        cw = np.stack([
            t[..., TP] / (EPS + t[..., TP] + (k - t[..., TP]) + fp_fn),
            t[..., TP_ON] / (EPS + t[..., TP_ON] + (k - t[..., TP_ON]) + fp_fn),
            *[np.where(k == 0, np.nan, t[..., col] / (k + EPS)) for col in (ANG, DIST, REL, ON_OK)],
        ], axis=-1)
        if average == "macro":
            overall = np.concatenate([cw[..., :2].mean(axis=-2), np.nanmean(cw[..., 2:], axis=-2)], axis=-1)
        elif average == "micro":
            s = t.sum(axis=-2)
            ks = s[..., K]
            fpfn = 0.5 * (s[..., FP] + s[..., FN])
            overall = np.stack([
                s[..., TP] / (EPS + s[..., TP] + (ks - s[..., TP]) + fpfn),
                s[..., TP_ON] / (EPS + s[..., TP_ON] + (ks - s[..., TP_ON]) + fpfn),
                *[np.where(ks == 0, np.nan, s[..., col] / (ks + EPS)) for col in (ANG, DIST, REL, ON_OK)],
            ], axis=-1)
        else:
            raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
    return overall, cw


def jackknife(stats: np.ndarray, average: str = "macro", confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Leave-one-clip-out jackknife of every metric, from per-clip statistics.

    The leave-one-out totals are exclusive prefix + suffix sums (all statistics are non-negative, so
    there is no cancellation as with ``total - clip``); then the bias-corrected estimate
    ``n * global - (n - 1) * mean(partial)`` and the Student-t interval with n - 1 degrees of
    freedom around it, as the official ``jackknife_estimation``.

    Args:
        stats: ``(n_clips, 13, 9)`` from :func:`clip_statistics`.
        average: ``"macro"`` or ``"micro"``.
        confidence: two-sided confidence level of the interval.

    Returns:
        dict with ``estimate`` ``(6,)``, ``ci`` ``(6, 2)``, ``classwise_estimate`` ``(13, 6)`` and
        ``classwise_ci`` ``(13, 6, 2)``; NaN for fewer than two clips.
    """
    from scipy import stats as sps

    n = len(stats)
    glob, glob_cw = scores_from_statistics(stats.sum(axis=0), average)
    zero = np.zeros((1,) + stats.shape[1:])
    before = np.concatenate([zero, np.cumsum(stats, axis=0)[:-1]])
    after = np.concatenate([np.cumsum(stats[::-1], axis=0)[::-1][1:], zero])
    part, part_cw = scores_from_statistics(before + after, average)
    t_value = sps.t.ppf(1 - (1 - confidence) / 2, n - 1) if n > 1 else np.nan
    out = {}
    for name, g, p in (("", glob, part), ("classwise_", glob_cw, part_cw)):
        mean = p.mean(axis=0)
        estimate = g - (n - 1) * (mean - g)
        std_err = np.sqrt((n - 1) * np.mean((p - mean) ** 2, axis=0))
        out[name + "estimate"] = estimate
        out[name + "ci"] = np.stack([estimate - t_value * std_err, estimate + t_value * std_err], axis=-1)
    return out


def compute_seld_metrics(
    refs: dict[str, np.ndarray],
    preds: dict[str, np.ndarray],
    average: str = "macro",
    jackknife: bool = False,
    full_clip: bool = False,
    doa_threshold: float = 20.0,
    dist_threshold: float = 1.0,
) -> dict:
    """Score predicted label arrays against reference label arrays (the in-memory API).

    Args:
        refs: clip name -> reference ``(n, 6)`` label array (CSV units).
        preds: clip name -> predicted ``(m, 6)`` label array. References without a prediction
            are skipped, as officially; a prediction without reference is an error.
        average: ``"macro"`` (official default) or ``"micro"``.
        jackknife: add leave-one-clip-out 95 % intervals (``ci``) and bias-corrected ``estimate``.
        full_clip: score all frames instead of the official truncation at the last reference frame.
        doa_threshold: angular threshold in degrees (inclusive).
        dist_threshold: relative distance threshold (inclusive).

    Returns:
        dict with ``F20, F20_on, DOAE, DE, RDE, OSA`` (F, RDE, OSA fractions, DOAE degrees, DE in
        CSV units; NaN where undefined), ``classwise`` (13 dicts with the same keys, plus ``ci``
        and ``estimate`` with ``jackknife``), ``n_files``, and with ``jackknife`` ``ci``
        {key: [low, high]} and ``estimate`` {key: value}.

    Raises:
        DataError: a prediction has no reference.
        ValueError: unknown ``average``.
    """
    if average not in ("macro", "micro"):
        raise ValueError(f"average must be 'macro' or 'micro', got {average!r}")
    orphans = sorted(set(preds) - set(refs))
    if orphans:
        raise DataError(f"prediction '{orphans[0]}' has no reference"
                        + (f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""))
    names = sorted(set(preds))  # file order never matters
    stats = clip_statistics([(refs[n], preds[n]) for n in names], doa_threshold, dist_threshold, full_clip)
    return summarize(stats, average=average, jackknife_ci=jackknife)


def summarize(stats: np.ndarray, average: str = "macro", jackknife_ci: bool = False) -> dict:
    """The result dict of :func:`compute_seld_metrics` from per-clip statistics ``(n_clips, 13, 9)``."""
    overall, cw = scores_from_statistics(stats.sum(axis=0), average)
    out: dict = {k: float(v) for k, v in zip(METRIC_KEYS, overall)}
    out["classwise"] = [{k: float(v) for k, v in zip(METRIC_KEYS, row)} for row in cw]
    out["n_files"] = int(len(stats))
    if jackknife_ci:
        jk = jackknife(stats, average)
        out["ci"] = {k: [float(lo), float(hi)] for k, (lo, hi) in zip(METRIC_KEYS, jk["ci"])}
        out["estimate"] = {k: float(v) for k, v in zip(METRIC_KEYS, jk["estimate"])}
        for c, entry in enumerate(out["classwise"]):
            entry["ci"] = {k: [float(lo), float(hi)] for k, (lo, hi) in zip(METRIC_KEYS, jk["classwise_ci"][c])}
            entry["estimate"] = {k: float(v) for k, v in zip(METRIC_KEYS, jk["classwise_estimate"][c])}
    return out


def metric_kwargs(eval_cfg) -> dict:
    """Keyword arguments of :func:`compute_seld_metrics` from an ``EvalConfig``."""
    return {"average": eval_cfg.average, "full_clip": eval_cfg.full_clip,
            "doa_threshold": eval_cfg.doa_threshold_deg, "dist_threshold": eval_cfg.dist_threshold}
