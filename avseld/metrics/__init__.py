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
- a predicted azimuth outside [-180, 180] is scored wrapped with ``(az + 180) % 360 - 180`` and
  folded (200 scores as -20, 540 as 0), as the official ``fold_az_angle``; ``evaluate_folders``
  warns once, naming the count and the first file and line (a reference azimuth outside
  [-180, 180] is an error: the dataset cannot contain one);
- ties in the azimuth cost are broken by scipy on the instances in file row order;
- the relative distance error is ``|d_pred - d_ref| / (d_ref + eps)`` (huge for a reference
  distance of 0); F and the errors use the official ``eps`` in their denominators;
- macro F is the mean over all 13 classes (a class absent everywhere counts as F = 0); macro errors
  and OSA are NaN-means over classes with at least one matched pair.
``full_clip=True`` scores every frame present in either file instead (documented departure).
Thresholds are inclusive: an angular error of exactly 20 degrees or a relative distance error of
exactly 1.0 passes.
"""

from avseld.metrics.csvio import (
    duplicated_rows,
    evaluate_folders,
    parse_label_csv_fast,
    read_folders,
    read_label_csvs,
)
from avseld.metrics.scoring import (
    EPS,
    METRIC_KEYS,
    N_STATS,
    clip_statistics,
    compute_seld_metrics,
    fold_azimuth,
    jackknife,
    metric_kwargs,
    scores_from_statistics,
    summarize,
    wrap_azimuth,
)

__all__ = [
    "EPS", "METRIC_KEYS", "N_STATS", "clip_statistics", "compute_seld_metrics", "duplicated_rows",
    "evaluate_folders", "fold_azimuth", "jackknife", "metric_kwargs", "parse_label_csv_fast",
    "read_folders", "read_label_csvs", "scores_from_statistics", "summarize", "wrap_azimuth",
]
