"""Confidence intervals for comparisons between systems: a paired bootstrap over test clips, pooled over seeds.

Why this interval. The metric is a ratio of counts summed over clips (F = TP / (TP + FP_spatial +
(FP + FN) / 2) per class, then a macro mean), so it is not a mean of per-clip values and a t-interval on
per-clip scores does not apply. The per-clip sufficient statistics of :mod:`avseld.metrics` make a
bootstrap cheap: draw the test clips with replacement (the same draw for both systems: the
comparison is paired, so what the two systems share, such as a hard clip, cancels), sum each system's
statistics over the drawn clips and over its seeds (pooled: the seeds' predictions of one clip count
as one resampling unit), score, and take the difference. The 2.5 and 97.5 percentiles of 2000 such
differences are the 95 % interval. It answers "would the ranking hold on another draw of test clips of
this kind", for these trained runs; the spread between training seeds is reported beside it (std over
seeds). The leave-one-clip-out jackknife of :func:`avseld.metrics.jackknife` is the official choice for
one system's interval; for a paired difference over pooled seeds the bootstrap is simpler and makes no
normality assumption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avseld.errors import DataError

COMPARED_KEYS = ("F20", "F20_on", "DOAE", "RDE", "OSA")  # the Table 1 quantities (report units)
PERCENT = {"F20", "F20_on", "RDE", "OSA", "DE"}


@dataclass(frozen=True)
class RunStatistics:
    """Per-clip statistics of one run's dev-test predictions.

    Attributes:
        names: clip names (sorted), one per row.
        stats: (n_clips, 13, 9) float64 (see :func:`avseld.metrics.clip_statistics`).
        average: ``macro`` or ``micro``, from the run's eval config.
    """

    names: tuple[str, ...]
    stats: np.ndarray
    average: str = "macro"


def run_statistics(run_dir: str | Path, split: str | None = None) -> RunStatistics:
    """Per-clip statistics of a finished run from its saved prediction CSVs (as ``avseld evaluate``).

    Args:
        run_dir: a finished run folder.
        split: a prediction folder under ``<run>/predictions/`` (default: the one scored in metrics.json).
    """
    from avseld.metrics import metric_kwargs, read_folders
    from avseld.metrics.scoring import clip_statistics
    from avseld.runs import RunFolder

    run = RunFolder(run_dir)
    refs, preds = read_folders(*run.scored_folders(split))  # what `avseld evaluate` reads, checked alike
    names = sorted(preds)
    kw = metric_kwargs(run.read_config().eval)
    stats = clip_statistics([(refs[n], preds[n]) for n in names], kw.get("doa_threshold", 20.0),
                            kw.get("dist_threshold", 1.0), kw.get("full_clip", False))
    return RunStatistics(tuple(names), stats, kw.get("average", "macro"))


def _pooled(runs: list[RunStatistics], names: tuple[str, ...]) -> np.ndarray:
    """(n_clips, 13, 9): each clip's statistics summed over the runs (seeds), rows in ``names`` order."""
    out = np.zeros((len(names), *runs[0].stats.shape[1:]))
    for r in runs:
        index = {n: i for i, n in enumerate(r.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise DataError(f"a run has no prediction for clip '{missing[0]}' scored by the others")
        out += r.stats[[index[n] for n in names]]
    return out


def _to_units(values: np.ndarray) -> np.ndarray:
    """Metric vectors in METRIC_KEYS order -> Table 1 units (%, degrees) for COMPARED_KEYS."""
    from avseld.metrics import METRIC_KEYS

    cols = [METRIC_KEYS.index(k) for k in COMPARED_KEYS]
    scale = np.array([100.0 if k in PERCENT else 1.0 for k in COMPARED_KEYS])
    return values[..., cols] * scale


def pooled_scores(runs: list[RunStatistics]) -> dict[str, float]:
    """The metrics of the seeds' pooled statistics (Table 1 units)."""
    from avseld.metrics.scoring import scores_from_statistics

    names = tuple(sorted(set.intersection(*(set(r.names) for r in runs))))
    overall, _ = scores_from_statistics(_pooled(runs, names).sum(axis=0), runs[0].average)
    return dict(zip(COMPARED_KEYS, (float(v) for v in _to_units(overall))))


def paired_difference(system: list[RunStatistics], reference: list[RunStatistics], n_boot: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """Difference ``system - reference`` of every Table 1 metric, with a paired bootstrap interval.

    Both sides are scored on the clips every run of both predicted (normally all of dev-test).

    Args:
        system, reference: the runs (one per seed) of each side.
        n_boot: bootstrap draws.
        confidence: interval coverage.
        seed: seed of the draws (fixed: the table is reproducible).

    Returns:
        ``{metric: {"diff", "low", "high", "half_width"}}`` in Table 1 units (F, RDE, OSA in %, DOAE in
        degrees); ``diff`` is the difference of the pooled scores.
    """
    from avseld.metrics.scoring import scores_from_statistics

    if not system or not reference:
        raise DataError("a paired difference needs runs on both sides")
    names = tuple(sorted(set.intersection(*(set(r.names) for r in [*system, *reference]))))
    if not names:
        raise DataError("the two systems share no scored clip")
    a, b = _pooled(system, names), _pooled(reference, names)
    avg = reference[0].average
    point = _to_units(scores_from_statistics(a.sum(0), avg)[0] - scores_from_statistics(b.sum(0), avg)[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    counts = np.zeros((n_boot, len(names)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    ta = np.einsum("bn,nkf->bkf", counts, a)
    tb = np.einsum("bn,nkf->bkf", counts, b)
    diffs = _to_units(scores_from_statistics(ta, avg)[0] - scores_from_statistics(tb, avg)[0])
    lo_q, hi_q = 50 * (1 - confidence), 50 * (1 + confidence)
    out = {}
    for j, k in enumerate(COMPARED_KEYS):
        d = diffs[:, j][np.isfinite(diffs[:, j])]
        lo, hi = (np.percentile(d, [lo_q, hi_q]) if len(d) else (math.nan, math.nan))
        out[k] = {"diff": float(point[j]), "low": float(lo), "high": float(hi), "half_width": float((hi - lo) / 2)}
    return out


def format_interval(d: dict[str, float], digits: int = 1) -> str:
    """``+2.3 [+0.4, +4.1]``."""
    if not math.isfinite(d["diff"]):
        return "–"
    return f"{d['diff']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"


def excludes_zero(d: dict[str, float]) -> bool:
    """Whether the interval lies entirely on one side of 0."""
    return d["low"] > 0 or d["high"] < 0
