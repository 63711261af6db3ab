"""The DCASE 2025 Task 3 SELD metrics on label arrays, equal to the official evaluation, plus jackknife.

Follows the official ``metrics.py``/``utils.py`` of partha2409/DCASE2025_seld_baseline (SPEC
section 3; Politis et al., "Overview and evaluation of sound event localization and detection in
DCASE 2019", for the location-aware F-score; Efron & Stein for the jackknife). Re-implemented on
arrays: every clip is parsed once, instances are paired per (clip, frame, class) with a direct path
for the common one-to-one case and the Hungarian algorithm (scipy ``linear_sum_assignment``, the
solver the official code uses) for multi-instance frames, and per-clip sufficient statistics make
macro/micro averages and the leave-one-clip-out jackknife cheap.

Official behaviours reproduced in the default mode (each checked against the official code):
- a clip is scored only over frames ``0 .. last_reference_frame - 1``: the last annotated reference
  frame, and every prediction at or after it, is not scored; a header-only reference scores nothing;
- a reference clip with no prediction is skipped (it does not count as all misses);
- at most 10 instances per class and frame are kept, as the official ``organize_labels`` does
  (extra rows take the first free track id, and when all 10 are taken overwrite track 0);
- duplicated rows are separate instances (two identical predictions = one match + one false alarm);
- ties in the azimuth cost are broken by scipy on the instances in file row order;
- the relative distance error is ``|d_pred - d_ref| / (d_ref + eps)`` (huge for a reference
  distance of 0); F and the errors use the official ``eps`` in their denominators;
- macro F is the mean over all 13 classes (a class absent everywhere counts as F = 0); macro errors
  and OSA are NaN-means over classes with at least one matched pair.
``full_clip=True`` scores every frame present in either file instead (documented departure).
Thresholds are inclusive: an angular error of exactly 20 degrees or a relative distance error of
exactly 1.0 passes.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path

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


def fold_azimuth(az: np.ndarray) -> np.ndarray:
    """Fold azimuths (degrees) to the front half-plane [-90, 90] (SPEC section 1).

    Wraps to [-180, 180), then maps (90, 180] to ``180 - az`` and [-180, -90) to ``-180 - az``,
    with the same floating-point operations as the official ``fold_az_angle``.
    """
    az = (np.asarray(az, dtype=np.float64) + 180) % 360 - 180
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


# A data row in the canonical form written by DCASE tools (integers, optional decimals, no spaces).
_NUM_INT, _NUM_DEC = r"-?[0-9]+", r"-?[0-9]+(?:\.[0-9]+)?"
_ROW = ",".join([_NUM_INT] * 3 + [_NUM_DEC] * 2 + [_NUM_INT])
_BODY_RE = re.compile(f"{_ROW}(?:\n{_ROW})*")
_NOT_PLAIN_RE = re.compile(r"[^0-9,\n-]|\n\n|^\n")  # anything but plain integer rows


def _parse_canonical(text: str) -> np.ndarray | None:
    """Values of canonical CSV text (exact header, rows of plain numbers), unchecked; else None."""
    from avseld.dataset import CSV_HEADER

    head, _, body = text.replace("\r\n", "\n").partition("\n")
    body = body.rstrip("\n")
    if head.strip().replace(" ", "") != CSV_HEADER or "\r" in body:
        return None
    if not body:
        return np.zeros((0, 6))
    if not _BODY_RE.fullmatch(body):
        return None
    v = np.array(body.replace("\n", ",").split(","), dtype=np.float64).reshape(-1, 6)
    v[:, [_FRAME, _CLASS, _SOURCE, _ON]] += 0.0  # "-0" is integer 0, not float -0.0
    return v


def _valid_rows(v: np.ndarray) -> np.ndarray:
    """``(n,)`` mask of the rows of an ``(n, 6)`` array that pass the strict reader's range checks."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(v).all(axis=1) & (np.abs(v[:, [_FRAME, _CLASS, _SOURCE, _ON]]) <= 2**53).all(axis=1)
                & (v[:, _FRAME] >= 0) & (v[:, _CLASS] >= 0)
                & (v[:, _CLASS] < N_CLASSES) & (v[:, _SOURCE] >= 0) & ((v[:, _ON] == 0) | (v[:, _ON] == 1))
                & (np.abs(v[:, _AZ]) <= 180) & (v[:, _DIST] >= 0))


def parse_label_csv_fast(text: str, name: str = "<string>") -> np.ndarray:
    """:func:`avseld.dataset.parse_label_csv_text` with a vectorized path for canonical text.

    Canonical text (exact header, rows of plain numbers, ``\\n`` or ``\\r\\n`` line ends) is parsed
    and range-checked with numpy; anything else, or any failed check, goes through the strict
    reader, so accepted inputs, values and error messages are exactly the strict reader's.
    """
    from avseld.dataset import parse_label_csv_text

    v = _parse_canonical(text)
    if v is not None and _valid_rows(v).all():
        return v
    return parse_label_csv_text(text, name)


def read_label_csvs(paths: list[Path]) -> list[np.ndarray]:
    """Read many label CSVs exactly as :func:`avseld.dataset.read_label_csv`, checking all at once.

    Bodies made only of digits, minus signs, commas and single line breaks (what DCASE tools
    write) are parsed together by numpy's C reader; other files go through the per-file path of
    :func:`parse_label_csv_fast`. Accepted inputs, values and errors are the strict reader's.

    Raises:
        DataError: the strict reader's error for the first bad file (naming file and line).
    """
    from avseld.dataset import CSV_HEADER, read_label_csv

    arrays: list[np.ndarray | None] = [None] * len(paths)
    bulk: list[int] = []
    bodies: list[str] = []
    for i, path in enumerate(paths):
        try:
            with open(path) as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            arrays[i] = read_label_csv(path)  # raises the strict reader's DataError
            continue
        head, _, body = (text.replace("\r\n", "\n") if "\r" in text else text).partition("\n")
        body = body.rstrip("\n")
        if head.strip().replace(" ", "") == CSV_HEADER and not body:
            arrays[i] = np.zeros((0, 6))
        elif head.strip().replace(" ", "") == CSV_HEADER and not _NOT_PLAIN_RE.search(body):
            bulk.append(i)
            bodies.append(body)
        else:
            arrays[i] = parse_label_csv_fast(text, str(path))
    if bulk:
        values = None
        try:
            values = np.loadtxt(io.StringIO("\n".join(bodies)), delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError:
            pass
        if values is None or values.shape[1] != 6:  # malformed somewhere: file by file
            for i in bulk:
                arrays[i] = parse_label_csv_fast(Path(paths[i]).read_text(), str(paths[i]))
        else:
            values[:, [_FRAME, _CLASS, _SOURCE, _ON]] += 0.0  # "-0" is integer 0, not float -0.0
            cuts = np.cumsum([b.count("\n") + 1 for b in bodies])[:-1]
            for i, v in zip(bulk, np.split(values, cuts)):
                arrays[i] = v
    stacked = _stack_rows(arrays, 0)
    bad = ~_valid_rows(stacked[:, 2:])
    if bad.any():
        first = int(stacked[np.argmax(bad), 0])
        arrays[first] = read_label_csv(paths[first])  # raises, naming the line
    return arrays


def _files_with_duplicates(arrays: list[np.ndarray], names: list[str]) -> list[str]:
    """Names of the files whose label array repeats a row exactly (vectorized over all files)."""
    rows = _stack_rows(arrays, 0)
    if len(rows) < 2:
        return []
    # Only rows sharing (clip, frame, class) can be duplicates: find those with one integer sort.
    if rows[:, 2].max() < 2 ** 24 and len(arrays) < 2 ** 30:
        key = (rows[:, 0].astype(np.int64) << 28) | (rows[:, 2].astype(np.int64) << 4) | rows[:, 3].astype(np.int64)
        key.sort()
        shared = np.unique(key[1:][key[1:] == key[:-1]])
        rows = rows[np.isin((rows[:, 0].astype(np.int64) << 28) | (rows[:, 2].astype(np.int64) << 4)
                            | rows[:, 3].astype(np.int64), shared)]
        if len(rows) < 2:
            return []
    rows = rows[np.lexsort(rows.T[::-1])]
    same = np.all(rows[1:] == rows[:-1], axis=1)
    return [names[i] for i in np.unique(rows[1:][same, 0].astype(np.int64))]


def duplicated_rows(path: str | Path, rows: np.ndarray) -> tuple[int, int] | None:
    """Line numbers ``(first, repeat)`` of the first row repeated exactly in a CSV file, or None.

    Args:
        path: the file ``rows`` were read from (re-read only when there is a duplicate, to name
            its lines).
        rows: ``(n, 6)`` label array read from ``path``.
    """
    if len(rows) < 2:
        return None
    order = np.lexsort(rows.T[::-1])
    same = np.all(rows[order[1:]] == rows[order[:-1]], axis=1)
    if not same.any():
        return None
    # Rare path: name the lines (the strict reader skips blank lines, so row i is the i-th other one).
    text_lines = Path(path).read_text().splitlines()
    line_of = [i for i, line in enumerate(text_lines[1:], start=2) if line.strip()]
    seen: dict[tuple, int] = {}
    for i, row in enumerate(map(tuple, rows.tolist())):
        if row in seen:
            return line_of[seen[row]], line_of[i]
        seen[row] = i
    return None


def _csv_files(folder: Path, what: str) -> dict[str, Path]:
    """``clip name -> path`` for a flat folder of CSVs or a folder of split folders of CSVs."""
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder does not exist")
    found: dict[str, Path] = {}
    flat = sorted((p for p in folder.glob("*.csv") if not p.name.startswith(".")), key=str)
    nested = sorted((p for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                     for p in d.glob("*.csv") if not p.name.startswith(".")), key=str)
    for p in flat + nested:
        if p.stem in found:
            raise DataError(f"{p}: clip name '{p.stem}' also in {found[p.stem]} ({what} names must be unique)")
        found[p.stem] = p
    return found


def evaluate_folders(
    ref_dir: str | Path,
    pred_dir: str | Path,
    average: str = "macro",
    jackknife: bool = False,
    full_clip: bool = False,
    doa_threshold: float = 20.0,
    dist_threshold: float = 1.0,
) -> dict:
    """Score a folder of prediction CSVs against a folder of reference CSVs (the CSV-folder API).

    Args:
        ref_dir: flat folder of reference CSVs or a folder of split folders (``metadata_dev/``).
        pred_dir: flat folder of prediction CSVs or split folders; names match by clip name.
        average, jackknife, full_clip, doa_threshold, dist_threshold: as in
            :func:`compute_seld_metrics`.

    Returns:
        The dict of :func:`compute_seld_metrics`.

    Raises:
        DataError: missing folder, no prediction CSV, a prediction without reference (naming the
            file), duplicated clip names, or a malformed CSV (naming file and line).
    """
    ref_files = _csv_files(Path(ref_dir), "reference")
    pred_files = _csv_files(Path(pred_dir), "prediction")
    if not pred_files:
        raise DataError(f"{pred_dir}: no prediction CSV files")
    orphans = sorted(set(pred_files) - set(ref_files))
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise DataError(f"{pred_files[orphans[0]]}: prediction file has no reference file in {ref_dir}{more}")
    skipped = len(ref_files) - len(pred_files)
    if skipped:
        log.info("%d reference files have no prediction file and are skipped (as officially)", skipped)
    names = sorted(pred_files)
    refs = dict(zip(names, read_label_csvs([ref_files[n] for n in names])))
    preds = dict(zip(names, read_label_csvs([pred_files[n] for n in names])))
    for n in _files_with_duplicates([refs[n] for n in names], names):
        first, again = duplicated_rows(ref_files[n], refs[n])
        raise DataError(f"{ref_files[n]}: line {again}: duplicated row (same as line {first}); "
                        "a reference instance cannot be listed twice")
    for n in _files_with_duplicates([preds[n] for n in names], names):
        dup = duplicated_rows(pred_files[n], preds[n])
        log.warning("%s: line %d repeats line %d exactly; scored as two instances, as officially",
                    pred_files[n], dup[1], dup[0])
    return compute_seld_metrics(refs, preds, average=average, jackknife=jackknife, full_clip=full_clip,
                                doa_threshold=doa_threshold, dist_threshold=dist_threshold)


def metric_kwargs(eval_cfg) -> dict:
    """Keyword arguments of :func:`compute_seld_metrics` from an ``EvalConfig``."""
    return {"average": eval_cfg.average, "full_clip": eval_cfg.full_clip,
            "doa_threshold": eval_cfg.doa_threshold_deg, "dist_threshold": eval_cfg.dist_threshold}
