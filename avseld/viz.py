"""Figures of the study and the ipywidgets attention explorer (seed report: Table 1 and Figure 1).

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot (no global state, no
display needed: works headless and in notebooks, where ``display(fig)`` shows it);
:func:`save_figure` writes a PNG atomically. Plots read run records and tables, never kernel state.
"""

from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from avseld.atomic import atomic_path
from avseld.layout import CLASS_NAMES, N_CLASSES

log = logging.getLogger(__name__)

_METRIC_LABELS = {"F20_on": "F20/1/on (%) ↑", "DOAE": "DOAE (°) ↓", "RDE": "RDE (%) ↓", "OSA": "OSA (%) ↑",
                  "F20": "F20/1 (%) ↑"}


def _cmap(i: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab20"](i % 20)


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    return path


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (for widgets)."""
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def plot_dataset_statistics(labels: pd.DataFrame) -> Figure:
    """Events per class by split, polyphony, azimuth and distance histograms, on-screen share.

    Args:
        labels: the table of :func:`avseld.stats.label_table`.
    """
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    ax = fig.subplot_mosaic([["cls", "cls", "poly"], ["az", "dist", "on"]])
    splits = sorted(labels["split"].unique())
    width = 0.8 / max(len(splits), 1)
    for i, s in enumerate(splits):
        g = labels[labels["split"] == s]
        n = g.groupby(["clip", "class", "source"]).size().reset_index().groupby("class").size()
        n = n.reindex(range(N_CLASSES), fill_value=0)
        ax["cls"].bar(np.arange(N_CLASSES) + i * width, n.values, width, label=s)
        poly = g.groupby(["clip", "frame"]).size().value_counts().sort_index()
        ax["poly"].bar(poly.index + i * width, poly.values / poly.values.sum(), width, label=s)
        ax["az"].hist(g["azimuth"], bins=np.arange(-90, 91, 10), alpha=0.6, label=s)
        ax["dist"].hist(g["distance"] / 100.0, bins=20, alpha=0.6, label=s)
    ax["cls"].set_xticks(np.arange(N_CLASSES) + 0.4 - width / 2, CLASS_NAMES, rotation=40, ha="right")
    ax["cls"].set(title="events per class", ylabel="events")
    levels = sorted(labels.groupby(["split", "clip", "frame"]).size().unique())
    ax["poly"].set_xticks(np.asarray(levels) + 0.4 - width / 2, [str(v) for v in levels])
    ax["poly"].set(title="polyphony (active frames)", xlabel="simultaneous events", ylabel="share")
    ax["az"].set(title="azimuth (folded)", xlabel="degrees", ylabel="label frames")
    ax["dist"].set(title="distance", xlabel="metres")
    share = labels.groupby(["split", "class"])["onscreen"].mean().unstack(0).reindex(range(N_CLASSES))
    share.index = [CLASS_NAMES[i] for i in share.index]
    share.plot.barh(ax=ax["on"], legend=False)
    ax["on"].set(title=f"on-screen share (all: {labels['onscreen'].mean():.0%})", xlabel="share of label frames")
    ax["on"].tick_params(labelsize=7)
    ax["cls"].legend(fontsize=8)
    return fig


def plot_clip(logmel: np.ndarray, frames: np.ndarray | None, labels: np.ndarray | None = None,
              title: str = "", n_strip: int = 10) -> Figure:
    """Log-mel of both channels, a strip of video frames and the label activity of one clip.

    Args:
        logmel: (C, T, F) log-mel (the first two channels are drawn).
        frames: (N, H, W, 3) uint8 RGB frames at 10 fps, or None.
        labels: (R, 6) label rows (frame, class, source, azimuth, distance, onscreen) or None.
        title: figure title.
        n_strip: frames shown in the strip.
    """
    n_rows = 2 + (frames is not None) + (labels is not None)
    fig = Figure(figsize=(12, 2.0 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, 1)
    dur = 5.0
    for c in range(2):
        axes[c].imshow(logmel[c].T, origin="lower", aspect="auto", extent=(0, dur, 0, logmel.shape[-1]), cmap="magma")
        axes[c].set(ylabel=f"ch {c} mel bin", title=f"log-mel, {'left' if c == 0 else 'right'} channel")
    i = 2
    if frames is not None:
        idx = np.linspace(0, len(frames) - 1, n_strip).round().astype(int)
        axes[i].imshow(np.concatenate([frames[k] for k in idx], axis=1))
        w = frames.shape[2]
        axes[i].set_xticks([w * (j + 0.5) for j in range(n_strip)], [f"{k / 10:.1f}s" for k in idx])
        axes[i].set_yticks([])
        axes[i].set(title="video frames (10 fps samples)")
        i += 1
    if labels is not None:
        ax = axes[i]
        for fr, cls, _src, az, _d, on in labels:
            ax.scatter(fr / 10.0, az, color=_cmap(int(cls)), marker="o" if on > 0.5 else "x", s=14)
        ax.set(xlim=(0, dur), ylim=(-95, 95), xlabel="time (s)", ylabel="azimuth (°)",
               title="reference events (o on-screen, x off-screen; colour = class)")
        present = sorted({int(c) for c in labels[:, 1]})
        for c in present:
            ax.plot([], [], "o", color=_cmap(c), label=CLASS_NAMES[c])
        if present:
            ax.legend(fontsize=7, ncol=min(len(present), 6), loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Training and results
# --------------------------------------------------------------------------------------------


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def read_log(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``log.jsonl`` as a table (nested records flattened to ``a/b`` columns)."""
    from avseld.runs import RunFolder

    rows = [_flatten(r) for r in RunFolder(run_dir).read_log(required=True)]
    return pd.DataFrame(rows)


def plot_training_curves(runs: dict[str, list[Path]]) -> Figure:
    """Loss and validation metrics per epoch, one colour per system, one line per seed.

    A validation metric is undefined (``null`` in the log) in an epoch without a detection (DOAE, RDE,
    OSA); the metric panels mark every epoch's point, so a value between two undefined epochs is seen
    (a line alone is not drawn through an isolated point, which hid whole systems in short runs).

    Args:
        runs: ``{system label: run folders}``; each folder has a ``log.jsonl``.
    """
    panels = [("loss", lambda c: "loss" in c.lower()), ("F20", lambda c: c.split("/")[-1] in ("F20", "F20_on")),
              ("DOAE", lambda c: c.split("/")[-1] == "DOAE"), ("RDE", lambda c: c.split("/")[-1] in ("RDE", "OSA"))]
    fig = Figure(figsize=(14, 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for si, (label, dirs) in enumerate(runs.items()):
        for ri, d in enumerate(dirs):
            df = read_log(d)
            if df.empty:
                continue
            x = df["epoch"] if "epoch" in df else np.arange(len(df))
            for ax, (_, pick) in zip(axes, panels):
                for col in (c for c in df.columns if pick(c)):
                    style = "--" if ("train" in col or "OSA" in col) else ":" if col.endswith("F20_on") else "-"
                    marker = "" if "loss" in col else "."
                    ax.plot(x, df[col], style, marker=marker, ms=4, color=_cmap(2 * si),
                            alpha=0.9 if ri == 0 else 0.5, label=f"{label}: {col}" if ri == 0 else None)
    for ax, (name, _) in zip(axes, panels):
        titles = {"F20": "F20 (solid) / F20_on (dotted)", "DOAE": "DOAE (no point: no detection that epoch)",
                  "RDE": "RDE (solid) / OSA (dashed)"}
        ax.set(title=titles.get(name, name), xlabel="epoch")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    return fig


def plot_classwise(table: pd.DataFrame, metric: str = "F20") -> Figure:
    """Per-class bars, one group per class and one bar per system (:func:`avseld.report.classwise_table`)."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax = fig.subplots()
    n = len(table.columns)
    width = 0.8 / max(n, 1)
    x = np.arange(len(table))
    for i, col in enumerate(table.columns):
        ax.bar(x + i * width, table[col].values, width, label=col, color=_cmap(2 * i))
    ax.set_xticks(x + 0.4 - width / 2, list(table.index), rotation=40, ha="right")
    ax.set(ylabel=_METRIC_LABELS.get(metric, metric), title=f"per-class {metric} on dev-test (mean over seeds)")
    ax.legend(fontsize=8)
    return fig


def plot_trajectories(ref: np.ndarray, pred: np.ndarray, clip: str = "") -> Figure:
    """Predicted (crosses) against reference (lines) azimuth and distance over time, by class.

    Args:
        ref: (R, 6) reference rows; pred: (P, 6) predicted rows (CSV units: degrees, cm).
        clip: clip name for the title.
    """
    fig = Figure(figsize=(12, 6), layout="constrained")
    ax_az, ax_d = fig.subplots(2, 1, sharex=True)
    for rows, is_ref in ((ref, True), (pred, False)):
        for (cls, src) in sorted({(int(r[1]), int(r[2])) for r in rows}):
            sel = rows[(rows[:, 1] == cls) & (rows[:, 2] == src)]
            sel = sel[np.argsort(sel[:, 0])]
            t = sel[:, 0] / 10.0
            kw = dict(color=_cmap(cls))
            if is_ref:
                ax_az.plot(t, sel[:, 3], "-", lw=2.5, alpha=0.6, **kw)
                ax_d.plot(t, sel[:, 4] / 100.0, "-", lw=2.5, alpha=0.6, **kw)
            else:
                ax_az.plot(t, sel[:, 3], "x", ms=5, **kw)
                ax_d.plot(t, sel[:, 4] / 100.0, "x", ms=5, **kw)
    ax_az.set(ylabel="azimuth (°)", ylim=(-185, 185), title=f"reference (lines) vs predicted (x): {clip}")
    ax_d.set(ylabel="distance (m)", xlabel="time (s)", xlim=(0, 5))
    _class_legend(ax_az, {int(c) for rows in (ref, pred) for c in rows[:, 1]},
                  [("-", "reference (line)"), ("x", "prediction")])
    return fig


def _class_legend(where: Any, classes: set[int], styles: list[tuple[str, str]], **kw: Any) -> None:
    """A legend outside the data: one colour per class by name, then the marker or line ``styles`` as
    ``(format, meaning)`` in black. ``where``: an axes (the legend goes right of it) or a figure
    (``kw`` e.g. ``loc="outside right lower"``, in a constrained layout)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_cmap(c), lw=3, label=CLASS_NAMES[c]) for c in sorted(classes)]
    handles += [Line2D([], [], linestyle="-" if f == "-" else "none", marker=None if f == "-" else f, color="k",
                       label=meaning) for f, meaning in styles]
    kw = kw or dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    where.legend(handles=handles, fontsize=7, title="classes", title_fontsize=8, **kw)


def plot_onscreen_confusion(cm: np.ndarray, title: str = "matched events") -> Figure:
    """On-screen confusion matrix ``(2, 2)`` (rows reference off/on, columns predicted off/on)."""
    fig = Figure(figsize=(4.2, 3.6), layout="constrained")
    _draw_confusion(fig.subplots(), cm, title)
    return fig


def plot_onscreen_confusions(cms: dict[str, np.ndarray]) -> Figure:
    """One on-screen confusion matrix per system, side by side (see :func:`plot_onscreen_confusion`)."""
    fig = Figure(figsize=(3.8 * len(cms), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(cms)))
    for ax, (label, cm) in zip(axes, cms.items()):
        _draw_confusion(ax, cm, label)
    return fig


def _draw_confusion(ax: Any, cm: np.ndarray, label: str) -> None:
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks([0, 1], ["off", "on"])
    ax.set_yticks([0, 1], ["off", "on"])
    # no matched event: nothing to score (the metric's OSA is NaN then), not an accuracy of 0
    acc = "n/a (no matched event)" if cm.sum() == 0 else f"{np.trace(cm) / cm.sum():.0%}"
    ax.set(xlabel="predicted", ylabel="reference", title=f"{label}: on-screen acc {acc}")


def plot_table1(table: pd.DataFrame, std: pd.DataFrame | None = None) -> Figure:
    """Table 1 as bars: published rows hatched, this study's rows with ± std over seeds."""
    keys = ("F20_on", "DOAE", "RDE", "OSA")
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    axes = fig.subplots(1, len(keys))
    labels = [f"{s}\n({'report' if src == 'published' else 'ours'})" for s, src in zip(table["system"], table["source"])]
    x = np.arange(len(table))
    for ax, k in zip(axes, keys):
        err = None if std is None else std[k].fillna(0).values
        colors = [_cmap(1 if src == "published" else 0 + 2 * i) for i, src in enumerate(table["source"])]
        bars = ax.bar(x, table[k].values, yerr=err, color=colors, capsize=3)
        for b, src in zip(bars, table["source"]):
            if src == "published":
                b.set_hatch("//")
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set(title=_METRIC_LABELS[k])
    fig.suptitle("Table 1: the report (STARSS23, hatched) and this study (its profile's data)")
    return fig


def plot_ablations(df: pd.DataFrame) -> Figure:
    """Change of each metric against the reference system, one bar per variant (error bar = std)."""
    keys = ("F20_on", "DOAE", "RDE", "OSA")
    fig = Figure(figsize=(14, 0.45 * len(df) + 2.2), layout="constrained")
    axes = fig.subplots(1, len(keys), sharey=True)
    y = np.arange(len(df))
    for ax, k in zip(axes, keys):
        good = 1 if k in ("F20_on", "OSA") else -1
        vals = df[f"d_{k}"].values
        ax.barh(y, vals, xerr=df[f"std_{k}"].values, color=["tab:green" if v * good > 0 else "tab:red" for v in vals])
        ax.axvline(0, color="k", lw=0.8)
        ax.set(title=f"Δ {_METRIC_LABELS[k]}")
    axes[0].set_yticks(y, list(df["label"]))
    axes[0].invert_yaxis()
    against = sorted(set(df["against"])) if "against" in df else ["AV-SELD"]
    fig.suptitle(f"ablations: change against {' / '.join(against)} on the same seeds (green = better)")
    return fig


# --------------------------------------------------------------------------------------------
# Attention explorer
# --------------------------------------------------------------------------------------------

CLIP_SECONDS = 5.0  # every panel of the explorer spans the clip, in seconds
FRAME_S = 0.1  # a label frame, a video frame and an attention query/key frame
LOGMEL_HOP_S = 0.02  # the log-mel hop (480 samples at 24 kHz); log-mel frame k is centred on k * hop
NEAR_UNIFORM = 0.10  # "near uniform": every allowed weight within ±10 % of 1 / (keys the query may attend)
OUTSIDE_COLOUR = "0.78"  # grey: attention outside the fusion window (not attended, by construction)
SPECTROGRAMS = {"left": "log-mel, left channel", "right": "log-mel, right channel",
                "ld": "level difference: left − right log-mel (the azimuth cue)"}


@dataclass
class ClipInputs:
    """What the explorer needs of one clip.

    Attributes:
        audio: (C, T, F) audio features, channels 0 and 1 the left and right log-mel in dB (drawn, and fed
            to models without their own entry).
        video_by_run: per model name, (50, *visual_shape) visual features or None (audio only).
        frames: (N, H, W, 3) RGB frames at 10 fps, or None.
        audio_by_run: per model name, (C, T, F) audio features when they differ between models.
        labels: (R, 6) reference rows (frame, class, source, azimuth, distance, onscreen), or None.
        predictions_by_run: per model name, (P, 6) rows of that run's saved prediction CSV for the clip.
    """

    audio: np.ndarray
    video_by_run: dict[str, np.ndarray | None]
    frames: np.ndarray | None = None
    audio_by_run: dict[str, np.ndarray] | None = None
    labels: np.ndarray | None = None
    predictions_by_run: dict[str, np.ndarray] | None = None


def _group_attention(attn: dict[str, Any]) -> dict[str, list[np.ndarray]]:
    """Attention dict -> ``{"self": [(H, Tq, Tk) per layer], "cross": [...]}`` for batch item 0."""
    import re

    groups: dict[str, list[tuple[int, np.ndarray]]] = {"self": [], "cross": []}
    for name, w in attn.items():
        if w is None:
            continue
        a = w.detach().float().cpu().numpy() if hasattr(w, "detach") else np.asarray(w, dtype=float)
        if a.ndim == 4:
            a = a[0]
        elif a.ndim == 3 and a.shape[0] == 1:
            a = a[0][None]
        m = re.search(r"(\d+)", name)
        idx = int(m.group(1)) if m else 0
        if name.startswith("audio_self"):
            groups["self"].append((idx, a))
        elif name.endswith("_cross"):
            groups["cross"].append((idx, a))
    return {k: [a for _, a in sorted(v, key=lambda t: t[0])] for k, v in groups.items()}


def _frames_from_tokens(a: np.ndarray, n_frames: int) -> np.ndarray:
    """(Tq, n_frames * n_tokens) cross-attention -> (Tq, n_frames) by summing each frame's tokens."""
    if a.shape[-1] == n_frames or a.shape[-1] % n_frames:
        return a
    return a.reshape(a.shape[0], n_frames, -1).sum(-1)


def window_mask(n_query: int, n_keys: int, window: int | None) -> np.ndarray | None:
    """(Tq, Tk) bool, True where query frame q may not attend key frame k, ``|q - k| > window``
    (:func:`avseld.models.blocks.memory_window`); None without a window (every key allowed)."""
    if window is None:
        return None
    return np.abs(np.arange(n_query)[:, None] - np.arange(n_keys)[None, :]) > window


def uniformity(a: np.ndarray, outside: np.ndarray | None = None) -> float:
    """How far a (Tq, Tk) attention map is from uniform: the largest ``|w * n - 1|`` over the allowed
    weights w of each query row, n its allowed keys (0: exactly uniform; < :data:`NEAR_UNIFORM`: near uniform)."""
    allowed = np.ones(a.shape, bool) if outside is None else ~outside
    n = allowed.sum(-1, keepdims=True)
    return float(np.abs(a * n - 1.0)[allowed].max())


def spectrogram(audio: np.ndarray, channel: str) -> np.ndarray:
    """(T, F) of (C, T, F) features: the ``left`` or ``right`` log-mel, or ``ld``, left minus right (dB)."""
    if channel == "left":
        return audio[0]
    if channel == "right":
        return audio[1]
    if channel == "ld":
        return audio[0] - audio[1]
    raise ValueError(f"spectrogram channel must be one of {list(SPECTROGRAMS)}, got {channel!r}")


def _draw_spectrogram(fig: Figure, ax: Any, audio: np.ndarray, channel: str, clip: str) -> None:
    """The chosen spectrogram over the clip's seconds (frame k centred on k * hop), with its colorbar."""
    s = spectrogram(audio, channel)
    extent = (-LOGMEL_HOP_S / 2, (len(s) - 0.5) * LOGMEL_HOP_S, 0, s.shape[1])
    if channel == "ld":  # diverging, 0 dB (same level in both channels) in the middle
        lim = float(np.abs(s).max()) or 1.0
        im = ax.imshow(s.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
    else:
        im = ax.imshow(s.T, origin="lower", aspect="auto", cmap="magma", extent=extent)
    fig.colorbar(im, ax=ax, label="dB (left − right)" if channel == "ld" else "dB", shrink=0.9)
    ax.set(ylabel="mel bin", title=f"{clip}: {SPECTROGRAMS[channel]}")


def _draw_attention(fig: Figure, ax: Any, a: np.ndarray, outside: np.ndarray | None, clim: tuple[float, float],
                    title: str, scale: str, xlabel: str) -> None:
    """A (Tq, Tk) attention map over the clip's seconds; ``outside`` entries masked, drawn grey."""
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    data = np.ma.masked_array(a, mask=np.zeros(a.shape, bool) if outside is None else outside)
    cmap = colormaps["viridis"].with_extremes(bad=OUTSIDE_COLOUR)
    im = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, vmin=clim[0], vmax=clim[1], interpolation="nearest",
                   extent=(0, a.shape[1] * FRAME_S, 0, a.shape[0] * FRAME_S))
    dev = uniformity(a, outside)
    near = dev < NEAR_UNIFORM
    fig.colorbar(im, ax=ax, shrink=0.9,
                 label=f"weight ({scale})\nmax |w·keys − 1| = {dev:.1%}" + ("\nnear uniform" if near else ""))
    if near:
        title += f"\nnear uniform: every weight within ±{NEAR_UNIFORM:.0%} of 1/keys (max |w·keys − 1| = {dev:.1%})"
    ax.set(title=title, xlabel=xlabel, ylabel="query time (s)")
    if outside is not None and outside.any():
        ax.legend(handles=[Patch(facecolor=OUTSIDE_COLOUR, edgecolor="0.4",
                                 label="outside the fusion window: not attended, by construction")],
                  loc="upper left", fontsize=7)


def _draw_events(ax: Any, rows: np.ndarray | None, title: str, missing: str) -> None:
    """Event rows (frame, class, source, azimuth, distance, onscreen) as azimuth at each 100-ms frame's
    centre: colour = class, o on-screen, x off-screen; ``missing`` is written where rows is None."""
    if rows is None:
        ax.text(CLIP_SECONDS / 2, 0, missing, ha="center", va="center", fontsize=9)
    else:
        for on, marker in ((True, "o"), (False, "x")):
            sel = rows[(rows[:, 5] > 0.5) == on]
            if len(sel):
                ax.scatter((sel[:, 0] + 0.5) * FRAME_S, sel[:, 3], color=[_cmap(int(c)) for c in sel[:, 1]],
                           marker=marker, s=16, label="on-screen" if on else "off-screen")
    ax.set(ylim=(-185, 185), yticks=[-180, -90, 0, 90, 180], ylabel="azimuth (°)", title=title)


def _draw_strip(ax: Any, frames: np.ndarray, n_strip: int = 10) -> None:
    """Video frames at their times: slot j of the clip (``CLIP_SECONDS / n_strip`` wide) shows the frame
    at the slot's middle."""
    slot = CLIP_SECONDS / n_strip
    for j in range(n_strip):
        k = min(int((j + 0.5) * slot / FRAME_S + 1e-9), len(frames) - 1)
        ax.imshow(frames[k], extent=(j * slot, (j + 1) * slot, 0, 1), aspect="auto")
    ax.set(ylim=(0, 1), yticks=[], title=f"video frames (each {slot:g}-s slot shows the frame at its middle)")


class AttentionExplorer:
    """ipywidgets explorer: clip, model (run), layer and head -> attention maps beside the clip.

    Shows the audio self-attention (ATEM / baseline MHSA) and the audio-to-video cross-attention
    (fusion decoder; full-view tokens summed per frame), each of its own chosen layer and head
    (``layer``/``head`` for the self-attention, ``cross_layer``/``cross_head`` for the cross-attention:
    each dropdown offers exactly the layers and heads that module of the chosen model has, so nothing is
    clamped). One column, one time axis in seconds for every panel: the spectrogram (``spectrogram``:
    left, right or their level difference), the two maps, the reference events and the model's saved
    predicted events, and the frame strip. Cross-attention outside a model's ``fusion_window`` is masked
    (grey). ``common_scale`` gives all layers and heads of a module one colour scale; a map within
    :data:`NEAR_UNIFORM` of uniform says so. One forward pass with ``return_attention=True`` per
    (model, clip), cached; every other change only redraws.

    Args:
        models: ``{run name: model}`` (eval mode is set here).
        clips: ``{clip name: ClipInputs}``.
    """

    def __init__(self, models: dict[str, Any], clips: dict[str, ClipInputs]) -> None:
        import ipywidgets as w

        if not models or not clips:
            raise ValueError("the explorer needs at least one model and one clip")
        self.models = models
        self.clips = clips
        for m in models.values():
            m.eval()
        self._cache: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {}
        self._static = None  # the display handle of the picture shown beside the widget (see show())
        self.shown: dict[str, np.ndarray | None] = {}
        self.clip = w.Dropdown(options=list(clips), description="clip", layout=_fit_width(clips))
        self.model = w.Dropdown(options=list(models), description="model", layout=_fit_width(models))
        self.spectrogram = w.Dropdown(options=[(v, k) for k, v in SPECTROGRAMS.items()], value="left",
                                      description="spectrogram", layout=_fit_width(SPECTROGRAMS.values()))
        self.common_scale = w.Checkbox(value=False, description="one colour scale for all layers and heads of a module",
                                       indent=False, layout=w.Layout(width="auto"))
        self.layer = w.Dropdown(options=[0], description="self layer")
        self.head = w.Dropdown(options=[0], description="self head")
        self.cross_layer = w.Dropdown(options=[0], description="cross layer")
        self.cross_head = w.Dropdown(options=[0], description="cross head")
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self._updating = False
        self._sync_choices()
        for ctl in (self.clip, self.model, self.spectrogram, self.common_scale, self.layer, self.head,
                    self.cross_layer, self.cross_head):
            ctl.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.clip, self.model]), w.HBox([self.spectrogram, self.common_scale]),
                              w.HBox([self.layer, self.head]), w.HBox([self.cross_layer, self.cross_head]),
                              self.status, self.image])
        self.redraw()

    # ---- model evaluation ------------------------------------------------------------------
    def attention(self, model: str, clip: str) -> dict[str, list[np.ndarray]]:
        """Attention maps of ``model`` on ``clip``: ``{"self": [(H, T, T)], "cross": [(H, Tq, Tk)]}``."""
        key = (model, clip)
        if key not in self._cache:
            import torch

            c = self.clips[clip]
            net = self.models[model]
            a = (c.audio_by_run or {}).get(model, c.audio)
            audio = torch.from_numpy(np.array(a, dtype=np.float32))[None]  # a copy: cached arrays are read-only
            v = c.video_by_run.get(model)
            video = None if v is None else torch.from_numpy(np.array(v, dtype=np.float32))[None]
            with torch.inference_mode():
                _, attn = net(audio, video, return_attention=True)
            self._cache[key] = _group_attention(attn)
        return self._cache[key]

    def module_shape(self, kind: str) -> tuple[int, int]:
        """(layers, heads) of the chosen model's ``kind`` (``self`` / ``cross``) attention; (0, 0) if absent."""
        layers = self.attention(self.model.value, self.clip.value)[kind]
        return (len(layers), layers[0].shape[0]) if layers else (0, 0)

    def head_map(self, kind: str, layer: int, head: int) -> np.ndarray:
        """(Tq, Tk) map of one head of the chosen model on the chosen clip (cross: tokens summed per frame)."""
        a = self.attention(self.model.value, self.clip.value)[kind][layer][head]
        return _frames_from_tokens(a, a.shape[0]) if kind == "cross" else a

    def outside(self, kind: str) -> np.ndarray | None:
        """(Tq, Tk) True where the chosen model cannot attend (cross-attention outside its ``fusion_window``)."""
        window = getattr(self.models[self.model.value], "fusion_window", None) if kind == "cross" else None
        return None if window is None else window_mask(*self.head_map(kind, *self._choice()[kind]).shape, window)

    def colour_limits(self, kind: str) -> tuple[float, float]:
        """(vmin, vmax) of the current ``kind`` map over the weights it may have: its own range, or with
        ``common_scale`` 0 to the largest weight of any layer and head of that module (same model, clip)."""
        outside = self.outside(kind)
        allowed = slice(None) if outside is None else ~outside
        if self.common_scale.value:
            n_layers, n_heads = self.module_shape(kind)
            return 0.0, max(float(self.head_map(kind, i, j)[allowed].max()) for i in range(n_layers) for j in range(n_heads))
        a = self.head_map(kind, *self._choice()[kind])[allowed]
        return float(a.min()), float(a.max())

    def _sync_choices(self) -> None:
        self._updating = True
        try:
            for kind, layer, head in (("self", self.layer, self.head), ("cross", self.cross_layer, self.cross_head)):
                n_layers, n_heads = self.module_shape(kind)
                for ctl, n in ((layer, n_layers), (head, n_heads)):
                    options = list(range(n)) if n else [0]
                    if list(ctl.options) != options:
                        ctl.options = options
                        ctl.value = 0
                    ctl.disabled = n == 0
        finally:
            self._updating = False

    def _on_change(self, change: dict) -> None:
        if self._updating:
            return
        if change["owner"] in (self.clip, self.model):
            self._sync_choices()
        self.redraw()

    # ---- drawing ---------------------------------------------------------------------------
    def current_maps(self) -> dict[str, np.ndarray | None]:
        """The self- and cross-attention matrices of the current choice (None where absent)."""
        att = self.attention(self.model.value, self.clip.value)
        return {kind: self.head_map(kind, layer, head) if att[kind] else None
                for kind, (layer, head) in self._choice().items()}

    def _choice(self) -> dict[str, tuple[int, int]]:
        """``{kind: (layer, head)}`` chosen for each attention module."""
        return {"self": (self.layer.value, self.head.value), "cross": (self.cross_layer.value, self.cross_head.value)}

    def figure(self) -> Figure:
        """The current view as a figure: one column of panels on one time axis (seconds)."""
        maps = self.current_maps()
        c, name = self.clips[self.clip.value], self.model.value
        fig = Figure(figsize=(12, 13.5), layout="constrained")
        axes = fig.subplots(6, 1, sharex=True, height_ratios=[1.1, 2.2, 2.2, 0.9, 0.9, 0.7])
        ax = dict(zip(("mel", "self", "cross", "ref", "pred", "strip"), axes))
        _draw_spectrogram(fig, ax["mel"], (c.audio_by_run or {}).get(name, c.audio), self.spectrogram.value,
                          self.clip.value)
        scale = ("one scale for all layers and heads" if self.common_scale.value else "this map's range")
        for kind, title, xlabel in (("self", "audio self-attention", "key time (s)"),
                                    ("cross", "audio→video cross-attention", "video frame time (s)")):
            if maps[kind] is None:
                ax[kind].text(CLIP_SECONDS / 2, 0.5, f"no {title} in this model", ha="center", va="center")
                ax[kind].set(yticks=[], title=f"no {title} in this model")
                continue
            (layer, head), (n_layers, n_heads) = self._choice()[kind], self.module_shape(kind)
            _draw_attention(fig, ax[kind], maps[kind], self.outside(kind), self.colour_limits(kind),
                            f"{title}: layer {layer} of {n_layers}, head {head} of {n_heads}", scale, xlabel)
        preds = (c.predictions_by_run or {}).get(name)
        _draw_events(ax["ref"], c.labels, "reference events", "no reference labels for this clip")
        _draw_events(ax["pred"], preds, "predicted events (the run's saved dev-test predictions)",
                     "no saved predictions for this model")
        classes = {int(k) for rows in (c.labels, preds) if rows is not None for k in rows[:, 1]}
        _class_legend(fig, classes, [("o", "on-screen"), ("x", "off-screen")], loc="outside right lower")
        if c.frames is not None:
            _draw_strip(ax["strip"], c.frames)
        else:
            ax["strip"].set(yticks=[], title="no video frames")
        for a in axes:
            a.set_xlim(0, CLIP_SECONDS)
            a.tick_params(labelbottom=True)
        ax["strip"].set_xlabel("time (s)")
        fig.suptitle(f"model: {name}")
        return fig

    def redraw(self) -> None:
        """Recompute the current maps and refresh the image widget."""
        self.shown = self.current_maps()
        fig = self.figure()
        self.image.value = figure_png(fig)
        if self._static is not None:  # keep the saved notebook's picture equal to the current view
            from IPython.display import Image

            self._static.update(Image(self.image.value))
        drawn = [a.get_title().split("\n")[0] for a in fig.axes if "attention" in a.get_title()]
        self.status.value = (f"<b>{html.escape(self.model.value)}</b> on <b>{html.escape(self.clip.value)}</b>, drawn: "
                             + " · ".join(html.escape(t) for t in drawn))  # the maps' own titles

    def show(self) -> None:
        """Display the widget and, below it, the current view as a plain PNG output that every change
        updates in place: a notebook saved from JupyterLab, or executed headless, keeps a picture of the
        last view that renders without a kernel (widgets need one)."""
        from IPython.display import Image, display

        display(self.widget)
        self._static = display(Image(self.image.value), display_id=True)

    def save_default_views(self, out_dir: str | Path, prefix: str = "attention") -> list[Path]:
        """Headless: save layer 0 / head 0 of every model on the current clip as PNG; return paths."""
        import re

        out = []
        clip = self.clip.value
        for name in self.models:
            self.model.value = name
            self.layer.value = self.head.value = self.cross_layer.value = self.cross_head.value = 0
            safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{prefix}_{name}_{clip}")
            out.append(save_figure(self.figure(), Path(out_dir) / f"{safe}.png"))
        return out


def _fit_width(options: Any) -> Any:
    """A dropdown layout wide enough for its description and its longest option, shown whole."""
    import ipywidgets as w

    return w.Layout(width=f"{max(len(str(o)) for o in options) + 16}ch")


def plot_seeds_and_differences(scores: pd.DataFrame, comparisons: pd.DataFrame, metric: str = "F20") -> Figure:
    """Left: every seed's dev-test ``metric`` per system (dots) and the mean over seeds (bar of the
    point plot: 95 % interval over seeds, seaborn's bootstrap). Right: each comparison's paired
    difference with its 95 % bootstrap interval over test clips (:func:`avseld.report.comparison_table`);
    an interval that excludes 0 is drawn solid.

    Args:
        scores: :func:`avseld.report.seed_scores` (columns ``system`` and ``metric``).
        comparisons: :func:`avseld.report.comparison_table`.
    """
    import seaborn as sns

    fig = Figure(figsize=(13, 0.9 + 0.45 * max(len(comparisons), scores["system"].nunique()) + 2.2),
                 layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    order = list(dict.fromkeys(scores["system"]))
    palette = {s: _cmap(2 * i) for i, s in enumerate(order)}
    sns.stripplot(data=scores, x=metric, y="system", order=order, hue="system", palette=palette, ax=left,
                  size=7, jitter=0.15, legend=False)
    sns.pointplot(data=scores, x=metric, y="system", order=order, color="black", linestyle="none", markers="|",
                  markersize=14, errorbar=("ci", 95), seed=0, ax=left)
    left.set(title=f"dev-test {metric} of every seed (|: mean, bar: 95 % CI over seeds)",
             xlabel=f"{metric} (%)" if metric != "DOAE" else "DOAE (°)", ylabel="")
    y = np.arange(len(comparisons))[::-1]
    for yi, (_, r) in zip(y, comparisons.iterrows()):
        d, lo, hi = r[f"d_{metric}"], r[f"lo_{metric}"], r[f"hi_{metric}"]
        solid = lo > 0 or hi < 0
        right.errorbar([d], [yi], xerr=[[d - lo], [hi - d]], fmt="o", color="black" if solid else "grey",
                       capsize=4, linestyle="none", mfc="black" if solid else "white")
    right.axvline(0.0, color="red", lw=0.8)
    right.set_yticks(y, [f"{r['system']} − {r['against']}" for _, r in comparisons.iterrows()], fontsize=8)
    right.set(title=f"paired difference in {metric} (95 % bootstrap CI over test clips, seeds pooled)",
              xlabel=f"Δ{metric} ({'points' if metric != 'DOAE' else '°'})")
    return fig
