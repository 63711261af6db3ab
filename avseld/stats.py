"""Dataset statistics and plots (notebook 00): clips per split, events per class, on-screen share,
polyphony, azimuth and distance distributions of a DCASE 2025 layout root (real or synthetic).

Statistics are computed from label arrays (``avseld.dataset`` conventions), so the same
functions summarise the real STARSS-derived data and the embedded synthetic data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avseld.layout import CLASS_NAMES, N_CLASSES, N_LABEL_FRAMES

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
        3+ active events), ``polyphony_counts``, ``azimuth_range``, ``distance_range_cm``,
        ``empty_clips``.
    """
    events = np.zeros(N_CLASSES, dtype=int)
    frames = np.zeros(N_CLASSES, dtype=int)
    poly = np.zeros(MAX_POLYPHONY_BIN + 1, dtype=int)
    n_on_events = 0
    n_events = 0
    all_rows = [np.asarray(r).reshape(-1, 6) for r in labels.values()]
    empty = 0
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
        poly += np.bincount(np.minimum(counts, MAX_POLYPHONY_BIN), minlength=MAX_POLYPHONY_BIN + 1)
    stacked = np.concatenate(all_rows) if all_rows else np.zeros((0, 6))
    n_rows = len(stacked)
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
        "azimuth_range": [float(stacked[:, 3].min()), float(stacked[:, 3].max())] if n_rows else None,
        "distance_range_cm": [float(stacked[:, 4].min()), float(stacked[:, 4].max())] if n_rows else None,
        "empty_clips": empty,
    }


def load_labels(root: str | Path, splits: list[str] | tuple[str, ...] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Read every label CSV of a root: ``{split: {clip name: label array}}`` (eval splits have none)."""
    from avseld.dataset import discover_clips, read_label_csv

    out: dict[str, dict[str, np.ndarray]] = {}
    for clip in discover_clips(root, splits):
        if clip.csv is None:
            continue
        out.setdefault(clip.split, {})[clip.name] = read_label_csv(clip.csv)
    return out


def dataset_summary(root: str | Path, splits: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Statistics of a dataset root, per split and over all splits.

    Returns:
        ``{"splits": {split: label_statistics}, "all": label_statistics, "clips_per_split": {split: n}}``
        (``clips_per_split`` counts wav files, including eval clips without labels).
    """
    from avseld.dataset import discover_clips

    clips = discover_clips(root, splits)
    per_split: dict[str, int] = {}
    for c in clips:
        per_split[c.split] = per_split.get(c.split, 0) + 1
    labels = load_labels(root, splits)
    merged = {f"{split}/{name}": rows for split, d in labels.items() for name, rows in d.items()}
    return {
        "clips_per_split": per_split,
        "splits": {split: label_statistics(d) for split, d in labels.items()},
        "all": label_statistics(merged),
    }


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


def plot_dataset_stats(root: str | Path, path: str | Path | None = None, splits: list[str] | tuple[str, ...] | None = None):
    """Four panels: events per class and split, polyphony, folded azimuth (on/off-screen), distance.

    Args:
        root: dataset root.
        path: if given, the figure is saved there (atomically).
        splits: split names or prefixes (None: all).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    labels = load_labels(root, splits)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(labels))
    for i, (split, d) in enumerate(sorted(labels.items())):
        s = label_statistics(d)
        ax.bar(np.arange(N_CLASSES) + i * width, s["events_per_class"], width=width, label=split)
    ax.set_xticks(np.arange(N_CLASSES) + 0.4 - width / 2)
    ax.set_xticklabels(CLASS_NAMES, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("events")
    ax.set_title("events per class")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for split, d in sorted(labels.items()):
        s = label_statistics(d)
        ax.plot(range(MAX_POLYPHONY_BIN + 1), s["polyphony"], marker="o", label=split)
    ax.set_xticks(range(MAX_POLYPHONY_BIN + 1))
    ax.set_xticklabels(["0", "1", "2", "3+"])
    ax.set_xlabel("simultaneous events")
    ax.set_ylabel("share of frames")
    ax.set_title("polyphony")
    ax.legend(fontsize=8)
    rows = np.concatenate([r for d in labels.values() for r in d.values()] or [np.zeros((0, 6))])
    ax = axes[1, 0]
    bins = np.arange(-90, 91, 10)
    ax.hist([rows[rows[:, 5] == 1, 3], rows[rows[:, 5] == 0, 3]], bins=bins, stacked=True, label=["on-screen", "off-screen"])
    ax.set_xlabel("folded azimuth (deg, +90 = left)")
    ax.set_ylabel("active frames")
    ax.set_title(f"azimuth (on-screen share {rows[:, 5].mean() if len(rows) else float('nan'):.2f})")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.hist(rows[:, 4] / 100.0, bins=30)
    ax.set_xlabel("distance (m)")
    ax.set_ylabel("active frames")
    ax.set_title("distance")
    fig.tight_layout()
    if path is not None:
        from avseld.atomic import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    return fig


def plot_clip(clip, path: str | Path | None = None, n_video_frames: int = 4):
    """One clip at a glance: stereo log spectrogram, labelled azimuth per class over time, video frames.

    Args:
        clip: an :class:`avseld.dataset.ClipRecord`.
        path: if given, the figure is saved there (atomically).
        n_video_frames: frames shown (evenly spaced over the clip).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy import signal as sps

    from avseld.dataset import load_audio, read_label_csv, read_video_frames

    audio = load_audio(clip.wav)
    fig = plt.figure(figsize=(12, 7))
    grid = fig.add_gridspec(3, n_video_frames)
    for ch, name in enumerate(("left", "right")):
        ax = fig.add_subplot(grid[ch, : n_video_frames // 2] if n_video_frames > 1 else grid[ch, 0])
        f, t, s = sps.spectrogram(audio[ch], fs=24000, nperseg=960, noverlap=480)
        ax.pcolormesh(t, f / 1000, 10 * np.log10(s + 1e-12), shading="auto", vmin=-120, vmax=-40)
        ax.set_ylabel(f"{name}: kHz")
    ax = fig.add_subplot(grid[:2, n_video_frames // 2 :] if n_video_frames > 1 else grid[:2, 0])
    if clip.csv is not None:
        rows = read_label_csv(clip.csv)
        for c in np.unique(rows[:, 1]).astype(int):
            sel = rows[:, 1] == c
            ax.scatter(rows[sel, 0] / 10.0, rows[sel, 3], s=8 + 8 * rows[sel, 5] * 3, label=CLASS_NAMES[c])
        ax.legend(fontsize=7, loc="upper right")
    ax.set_ylim(-95, 95)
    ax.set_xlim(0, 5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("azimuth (deg); large = on-screen")
    ax.set_title(clip.name)
    if clip.mp4 is not None:
        frames = read_video_frames(clip.mp4)
        for i, k in enumerate(np.linspace(0, len(frames) - 1, n_video_frames).astype(int)):
            ax = fig.add_subplot(grid[2, i])
            ax.imshow(frames[k])
            ax.set_title(f"t = {k / 10:.1f} s", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    if path is not None:
        from avseld.atomic import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    return fig
