"""Dataset statistics (notebook 00, ``avseld validate-data``, ``avseld synth``): clips per split,
events per class, on-screen share, polyphony, azimuth and distance ranges of a DCASE 2025 layout
root (real or synthetic); the plots are :func:`avseld.viz.plot_dataset_statistics`.

Statistics are computed from label arrays (``avseld.dataset`` conventions), so the same
functions summarise the real STARSS-derived data and the embedded synthetic data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avseld.dataset import ClipRecord, discover_clips, read_label_csv
from avseld.errors import DataError
from avseld.layout import CLASS_NAMES, CSV_COLUMNS, N_CLASSES, N_LABEL_FRAMES

MAX_POLYPHONY_BIN = 3  # the histogram's last bin holds 3 or more simultaneous events


def label_statistics(labels: dict[str, np.ndarray], n_frames: int = N_LABEL_FRAMES) -> dict[str, Any]:
    """Summarise label arrays.

    Args:
        labels: clip name -> ``(n_rows, 6)`` label array.
        n_frames: label frames per clip (for the polyphony histogram).

    Returns:
        Dict with ``n_clips``, ``n_rows``, ``events_per_class`` (distinct (clip, class, source)
        instances, list of 13), ``frames_per_class`` (active rows per class), ``onscreen_share``
        (share of active rows that are on-screen), ``onscreen_event_share`` (share of events that
        are on-screen in at least one frame), ``polyphony`` (share of clip-frames with 0, 1, 2,
        3+ active events), ``polyphony_counts``, ``mean_polyphony`` and ``max_polyphony``
        (simultaneous events over the frames with at least one), ``classes_present``,
        ``azimuth_range``, ``distance_range_cm``, ``empty_clips``.
    """
    events = np.zeros(N_CLASSES, dtype=int)
    frames = np.zeros(N_CLASSES, dtype=int)
    poly = np.zeros(MAX_POLYPHONY_BIN + 1, dtype=int)
    n_on_events = 0
    n_events = 0
    all_rows = [np.asarray(r).reshape(-1, 6) for r in labels.values()]
    empty = 0
    active: list[np.ndarray] = []  # events in each frame that has any, every clip
    for rows in all_rows:
        if len(rows) == 0:
            empty += 1
        cls = rows[:, 1].astype(int)
        frames += np.bincount(cls, minlength=N_CLASSES)[:N_CLASSES]
        keys = {(int(c), int(s)) for c, s in zip(rows[:, 1], rows[:, 2])}
        for c, s in keys:
            events[c] += 1
            n_events += 1
            sel = (rows[:, 1] == c) & (rows[:, 2] == s)
            n_on_events += int(rows[sel, 5].max() > 0)
        counts = np.bincount(rows[:, 0].astype(int), minlength=n_frames)[:n_frames] if len(rows) else np.zeros(n_frames, int)
        if len(rows):
            per_frame = np.bincount(rows[:, 0].astype(int))  # every labelled frame, past n_frames too
            active.append(per_frame[per_frame > 0])
        poly += np.bincount(np.minimum(counts, MAX_POLYPHONY_BIN), minlength=MAX_POLYPHONY_BIN + 1)
    stacked = np.concatenate(all_rows) if all_rows else np.zeros((0, 6))
    n_rows = len(stacked)
    active_counts = np.concatenate(active) if active else np.zeros(0, int)
    return {
        "n_clips": len(labels),
        "n_rows": n_rows,
        "n_events": n_events,
        "events_per_class": events.tolist(),
        "frames_per_class": frames.tolist(),
        "onscreen_share": float(stacked[:, 5].mean()) if n_rows else float("nan"),
        "onscreen_event_share": n_on_events / n_events if n_events else float("nan"),
        "polyphony_counts": poly.tolist(),
        "polyphony": (poly / max(1, poly.sum())).tolist(),
        "mean_polyphony": float(active_counts.mean()) if len(active_counts) else float("nan"),
        "max_polyphony": int(active_counts.max()) if len(active_counts) else 0,
        "classes_present": int(np.count_nonzero(frames)),
        "azimuth_range": [float(stacked[:, 3].min()), float(stacked[:, 3].max())] if n_rows else None,
        "distance_range_cm": [float(stacked[:, 4].min()), float(stacked[:, 4].max())] if n_rows else None,
        "empty_clips": empty,
    }


def _read_labels(clips: list[ClipRecord]) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {clip name: (R, 6) label array}}`` of the clips that have a label CSV."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for clip in clips:
        if clip.csv is None:
            continue
        out.setdefault(clip.split, {})[clip.name] = read_label_csv(clip.csv)
    return out


def load_labels(root: str | Path, splits: list[str] | tuple[str, ...] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Read every label CSV of a root: ``{split: {clip name: (R, 6) label array}}`` (eval splits have none)."""
    return _read_labels(discover_clips(root, splits))


def summarise_labels(labels: dict[str, dict[str, np.ndarray]], clips_per_split: dict[str, int] | None = None,
                     n_frames: int = N_LABEL_FRAMES) -> dict[str, Any]:
    """Statistics per split and over all splits of :func:`load_labels`-shaped label arrays.

    Args:
        labels: ``{split: {clip name: (R, 6) label array}}``.
        clips_per_split: wav files per split (eval splits included); None counts the labelled clips.
        n_frames: label frames per clip (for the polyphony histogram).

    Returns:
        ``{"clips_per_split": {split: n}, "splits": {split: label_statistics}, "all": label_statistics}``.
    """
    if clips_per_split is None:
        clips_per_split = {split: len(d) for split, d in labels.items()}
    merged = {f"{split}/{name}": rows for split, d in labels.items() for name, rows in d.items()}
    return {
        "clips_per_split": dict(clips_per_split),
        "splits": {split: label_statistics(d, n_frames) for split, d in labels.items()},
        "all": label_statistics(merged, n_frames),
    }


def dataset_summary(root: str | Path, splits: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """:func:`summarise_labels` of a dataset root (``clips_per_split`` counts wav files, eval included)."""
    clips = discover_clips(root, splits)  # one walk of the root for the counts and the labels
    per_split: dict[str, int] = {}
    for c in clips:
        per_split[c.split] = per_split.get(c.split, 0) + 1
    return summarise_labels(_read_labels(clips), per_split)


def split_table(summary: dict[str, Any]):
    """One row per labelled split of a summary (:func:`summarise_labels`) as a pandas DataFrame.

    Columns: ``split``, ``clips`` (labelled clips), ``clips_without_events``, ``events`` (distinct
    clip/class/source instances), ``label_rows``, ``onscreen_share`` (of label rows),
    ``mean_polyphony`` and ``max_polyphony`` (over frames with an event), ``classes_present``,
    ``azimuth_range`` (degrees) and ``distance_range_cm`` as ``"low..high"``.
    """
    import pandas as pd

    def span(r: list[float] | None) -> str:
        return "" if r is None else f"{r[0]:.0f}..{r[1]:.0f}"

    rows = [{
        "split": split,
        "clips": s["n_clips"],
        "clips_without_events": s["empty_clips"],
        "events": s["n_events"],
        "label_rows": s["n_rows"],
        "onscreen_share": s["onscreen_share"],
        "mean_polyphony": s["mean_polyphony"],
        "max_polyphony": s["max_polyphony"],
        "classes_present": s["classes_present"],
        "azimuth_range": span(s["azimuth_range"]),
        "distance_range_cm": span(s["distance_range_cm"]),
    } for split, s in sorted(summary["splits"].items())]
    return pd.DataFrame(rows)


def label_table(labels: dict[str, dict[str, np.ndarray]]):
    """Every label row of :func:`load_labels` output as one pandas DataFrame (what the plots read).

    Returns:
        Columns ``split, clip, frame, class, source, azimuth, distance, onscreen, class_name``
        (azimuth in degrees, distance in cm, as in the CSVs).

    Raises:
        DataError: when no clip has a label row.
    """
    import pandas as pd

    parts = []
    for split, d in labels.items():
        for name, rows in d.items():
            df = pd.DataFrame(np.asarray(rows).reshape(-1, len(CSV_COLUMNS)), columns=list(CSV_COLUMNS))
            df.insert(0, "clip", name)
            df.insert(0, "split", split)
            parts.append(df)
    if not parts:
        raise DataError("no labelled clips")
    df = pd.concat(parts, ignore_index=True)
    for k in ("frame", "class", "source", "onscreen"):
        df[k] = df[k].astype(int)
    df["class_name"] = [CLASS_NAMES[i] for i in df["class"]]
    return df


def summary_table(summary: dict[str, Any]):
    """Per-class event counts per split as a pandas DataFrame (rows = classes, columns = splits)."""
    import pandas as pd

    data = {split: s["events_per_class"] for split, s in summary["splits"].items()}
    return pd.DataFrame(data, index=list(CLASS_NAMES))


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable multi-line summary (what ``avseld validate-data`` prints)."""
    lines = ["clips per split:"]
    for split, n in sorted(summary["clips_per_split"].items()):
        lines.append(f"  {split:<24} {n}")
    a = summary["all"]
    if a["n_clips"]:
        lines.append(f"labelled clips: {a['n_clips']} ({a['empty_clips']} without events), events: {a['n_events']}, active frames: {a['n_rows']}")
        lines.append("events per class (all labelled splits):")
        for name, n_ev, n_fr in zip(CLASS_NAMES, a["events_per_class"], a["frames_per_class"]):
            lines.append(f"  {name:<20} {n_ev:6d} events {n_fr:7d} frames")
        lines.append(f"on-screen share: {a['onscreen_share']:.3f} of active frames, {a['onscreen_event_share']:.3f} of events")
        poly = ", ".join(f"{k}{'+' if k == MAX_POLYPHONY_BIN else ''}: {p:.3f}" for k, p in enumerate(a["polyphony"]))
        lines.append(f"polyphony (share of frames): {poly}")
        if a["azimuth_range"] is not None:
            lines.append(f"azimuth range: {a['azimuth_range'][0]:g} .. {a['azimuth_range'][1]:g} deg")
            lines.append(f"distance range: {a['distance_range_cm'][0]:g} .. {a['distance_range_cm'][1]:g} cm")
    return "\n".join(lines)
