"""Label arrays <-> Multi-ACCDOA (ADPIT) and single-ACCDOA targets; the one place that knows the
coordinate conventions (azimuth degrees -> x = cos, y = sin; distance centimetres <-> metres).

Follows the DCASE 2025 Task 3 baseline (partha2409/DCASE2025_seld_baseline, ``process_labels_adpit``)
and the ADPIT of Shimada et al., "Multi-ACCDOA: localizing and detecting overlapping sounds from the
same class with auxiliary duplicating permutation invariant training", ICASSP 2022.

Label arrays are ``(n_rows, 6)`` float64: ``frame, class, source, azimuth_deg, distance_cm, onscreen``.
"""

from __future__ import annotations

import numpy as np

from avseld.layout import N_ADPIT_SLOTS, N_CLASSES, N_LABEL_FRAMES, N_TARGET_FIELDS, target_field
from avseld.metrics.scoring import fold_azimuth  # noqa: F401  (the metric owns it: the official fold_az_angle)

ACTIVITY_THRESHOLD = 0.5  # a decoded target slot is active above this

# ADPIT slot groups: one instance of a class -> slot A0; two -> B0, B1; three or more -> C0, C1, C2
SLOT_GROUPS: tuple[tuple[int, ...], ...] = ((0,), (1, 2), (3, 4, 5))


def azimuth_to_xy(azimuth_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector of an azimuth: ``x = cos(az)``, ``y = sin(az)`` (+90 deg = left = +y)."""
    rad = np.deg2rad(np.asarray(azimuth_deg, dtype=np.float64))
    return np.cos(rad), np.sin(rad)


def xy_to_azimuth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Azimuth in degrees of an (x, y) vector, in [-180, 180]: ``atan2(y, x) * 180 / pi``.

    float32 inputs are computed in float32, as the baseline decodes (so rounding ties fall the same
    way); anything else in float64.
    """
    x, y = np.asarray(x), np.asarray(y)
    dtype = np.float32 if x.dtype == y.dtype == np.float32 else np.float64
    return np.arctan2(y.astype(dtype, copy=False), x.astype(dtype, copy=False)) * 180 / np.pi


def cm_to_m(distance_cm: np.ndarray) -> np.ndarray:
    """CSV distances (centimetres) to model units (metres)."""
    return np.asarray(distance_cm, dtype=np.float64) / 100.0


def m_to_cm(distance_m: np.ndarray) -> np.ndarray:
    """Model distances (metres) to CSV units (centimetres)."""
    return np.asarray(distance_m, dtype=np.float64) * 100.0


def mirror_labels(rows: np.ndarray) -> np.ndarray:
    """Label array of the left-right mirrored scene: azimuth negated, all else unchanged."""
    out = np.array(rows, dtype=np.float64, copy=True).reshape(-1, 6)
    out[:, 3] = -out[:, 3]
    out[out[:, 3] == 0.0, 3] = 0.0  # no negative zeros
    return out


def _check_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return rows.reshape(0, 6)
    if rows.ndim != 2 or rows.shape[1] != 6:
        raise ValueError(f"label rows must have shape (n, 6), got {rows.shape}")
    return rows


def _fields(rows: np.ndarray) -> np.ndarray:
    """``(n, 5)``: activity, x, y, distance_m, onscreen of each row."""
    x, y = azimuth_to_xy(rows[:, 3])
    return np.stack([np.ones(len(rows)), x, y, cm_to_m(rows[:, 4]), rows[:, 5]], axis=1)


def adpit_slots(rows: np.ndarray, n_frames: int = N_LABEL_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """ADPIT slot of each label row, as the official baseline assigns them.

    Within one frame, the instances of one class keep their order in the file; one instance goes
    to A0, two to B0 and B1, three to C0, C1, C2; a fourth and later one is dropped (as officially).

    Returns:
        ``(keep, slot)``: indices of the rows that get a slot (frame < n_frames) and their slots.
    """
    rows = _check_rows(rows)
    valid = np.flatnonzero((rows[:, 0] >= 0) & (rows[:, 0] < n_frames))
    if len(valid) == 0:
        return valid, valid.copy()
    frame = rows[valid, 0].astype(np.int64)
    cls = rows[valid, 1].astype(np.int64)
    order = np.lexsort((cls, frame))  # stable: file order kept within (frame, class)
    key = frame[order] * N_CLASSES + cls[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    group_count = np.repeat(counts, counts)
    rank = np.arange(len(key)) - np.repeat(starts, counts)
    first_slot = np.where(group_count == 1, 0, np.where(group_count == 2, 1, 3))
    keep = rank < 3
    return valid[order][keep], (first_slot + rank)[keep]


def encode_adpit(rows: np.ndarray, n_frames: int = N_LABEL_FRAMES) -> np.ndarray:
    """Multi-ACCDOA ADPIT targets of one clip.

    Args:
        rows: ``(n, 6)`` label array (CSV units).
        n_frames: label frames per clip; rows at later frames are ignored.

    Returns:
        ``(n_frames, 6, 5, 13)`` float32: axis 1 the slots A0, B0, B1, C0, C1, C2; axis 2
        (activity, x = cos az, y = sin az, distance in metres, on-screen); axis 3 the class.
    """
    rows = _check_rows(rows)
    out = np.zeros((n_frames, N_ADPIT_SLOTS, N_TARGET_FIELDS, N_CLASSES), dtype=np.float32)
    idx, slot = adpit_slots(rows, n_frames)
    if len(idx):
        sel = rows[idx]
        out[sel[:, 0].astype(np.int64), slot, :, sel[:, 1].astype(np.int64)] = _fields(sel)
    return out


def _decode_slots(
    targets: np.ndarray, slot_source: np.ndarray, threshold: float
) -> np.ndarray:
    """Rows of the active ``(T, S, 5, K)`` target slots, ordered by frame, class, slot."""
    act = targets[:, :, 0, :] > threshold  # (T, S, K)
    frame, slot, cls = np.nonzero(act)
    order = np.lexsort((slot, cls, frame))
    frame, slot, cls = frame[order], slot[order], cls[order]
    vals = targets[frame, slot, :, cls].astype(np.float64)  # (n, 5)
    return np.stack(
        [frame, cls, slot_source[slot], xy_to_azimuth(vals[:, 1], vals[:, 2]), m_to_cm(vals[:, 3]), vals[:, 4]],
        axis=1,
    ).astype(np.float64).reshape(-1, 6)


def decode_adpit(targets: np.ndarray, threshold: float = ACTIVITY_THRESHOLD) -> np.ndarray:
    """Inverse of :func:`encode_adpit`: targets ``(T, 6, 5, 13)`` -> ``(n, 6)`` label array.

    The source id of a row is its position in its slot group (0 for A0, B0, C0; 1 for B1, C1; 2
    for C2); azimuth from ``atan2(y, x)``; distance back in centimetres; rows ordered by frame,
    class, slot (so file order within a frame and class is restored). Not rounded.
    """
    targets = np.asarray(targets)
    if targets.ndim != 4 or targets.shape[1:] != (N_ADPIT_SLOTS, N_TARGET_FIELDS, N_CLASSES):
        raise ValueError(f"targets must have shape (T, {N_ADPIT_SLOTS}, {N_TARGET_FIELDS}, {N_CLASSES}), got {targets.shape}")
    slot_source = np.array([i for g in SLOT_GROUPS for i in range(len(g))], dtype=np.float64)
    return _decode_slots(targets, slot_source, threshold)


def encode_accdoa(rows: np.ndarray, n_frames: int = N_LABEL_FRAMES) -> np.ndarray:
    """Single-ACCDOA targets: ``(n_frames, 5, 13)`` float32 (activity, x, y, distance_m, on-screen).

    As in the official single-track labels, when a class has several instances in a frame the
    last one in file order is kept.
    """
    rows = _check_rows(rows)
    out = np.zeros((n_frames, N_TARGET_FIELDS, N_CLASSES), dtype=np.float32)
    sel = rows[(rows[:, 0] >= 0) & (rows[:, 0] < n_frames)]
    if len(sel):
        key = sel[:, 0].astype(np.int64) * N_CLASSES + sel[:, 1].astype(np.int64)
        _, last_rev = np.unique(key[::-1], return_index=True)
        sel = sel[len(sel) - 1 - last_rev]  # the last row of each (frame, class)
        out[sel[:, 0].astype(np.int64), :, sel[:, 1].astype(np.int64)] = _fields(sel)
    return out


def decode_accdoa(targets: np.ndarray, threshold: float = ACTIVITY_THRESHOLD) -> np.ndarray:
    """Inverse of :func:`encode_accdoa`: ``(T, 5, 13)`` -> ``(n, 6)`` label array (source 0)."""
    targets = np.asarray(targets)
    if targets.ndim != 3 or targets.shape[1:] != (N_TARGET_FIELDS, N_CLASSES):
        raise ValueError(f"targets must have shape (T, {N_TARGET_FIELDS}, {N_CLASSES}), got {targets.shape}")
    return _decode_slots(targets[:, None], np.zeros(1), threshold)


def mirror_targets(targets: np.ndarray) -> np.ndarray:
    """Targets of the mirrored scene (``(..., 5, 13)`` with the field axis second to last): y negated."""
    out = np.array(targets, copy=True)
    y = target_field("y")
    out[..., y, :] = -out[..., y, :]
    return out
