"""Figures of the study and the ipywidgets attention explorer (seed report: Table 1 and Figure 1).

Every function returns a :class:`matplotlib.figure.Figure` made without pyplot (no global state, no
display needed: works headless and in notebooks, where ``display(fig)`` shows it);
:func:`save_figure` writes a PNG atomically. Plots read run records and tables, never kernel state.
"""

from __future__ import annotations

import io
import json
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
        labels: the table of :func:`avseld.report.label_table`.
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
    path = Path(run_dir) / "log.jsonl"
    rows = [_flatten(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def plot_training_curves(runs: dict[str, list[Path]]) -> Figure:
    """Loss and validation metrics per epoch, one colour per system, one line per seed.

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
                    ax.plot(x, df[col], style, color=_cmap(2 * si), alpha=0.9 if ri == 0 else 0.5,
                            label=f"{label}: {col}" if ri == 0 else None)
    for ax, (name, _) in zip(axes, panels):
        titles = {"F20": "F20 (solid) / F20_on (dotted)", "RDE": "RDE (solid) / OSA (dashed)"}
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
                ax_az.plot(t, sel[:, 3], "-", lw=2.5, alpha=0.6, label=f"ref {CLASS_NAMES[cls]}", **kw)
                ax_d.plot(t, sel[:, 4] / 100.0, "-", lw=2.5, alpha=0.6, **kw)
            else:
                ax_az.plot(t, sel[:, 3], "x", ms=5, **kw)
                ax_d.plot(t, sel[:, 4] / 100.0, "x", ms=5, **kw)
    ax_az.plot([], [], "kx", label="prediction")
    ax_az.set(ylabel="azimuth (°)", ylim=(-185, 185), title=f"reference (lines) vs predicted (x): {clip}")
    ax_d.set(ylabel="distance (m)", xlabel="time (s)", xlim=(0, 5))
    ax_az.legend(fontsize=7, ncol=3)
    return fig


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


@dataclass
class ClipInputs:
    """What the explorer needs of one clip.

    Attributes:
        audio: (C, T, F) audio features (drawn, and fed to models without their own entry).
        video_by_run: per model name, (50, *visual_shape) visual features or None (audio only).
        frames: (N, H, W, 3) RGB frames at 10 fps, or None.
        audio_by_run: per model name, (C, T, F) audio features when they differ between models.
    """

    audio: np.ndarray
    video_by_run: dict[str, np.ndarray | None]
    frames: np.ndarray | None = None
    audio_by_run: dict[str, np.ndarray] | None = None


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


class AttentionExplorer:
    """ipywidgets explorer: clip, model (run), layer and head -> attention maps beside the clip.

    Shows the audio self-attention (ATEM / baseline MHSA) and the audio-to-video cross-attention
    (fusion decoder; full-view tokens summed per frame), each of its own chosen layer and head
    (``layer``/``head`` for the self-attention, ``cross_layer``/``cross_head`` for the cross-attention:
    each dropdown offers exactly the layers and heads that module of the chosen model has, so nothing is
    clamped), next to the clip's log-mel and frame strip. One forward pass with
    ``return_attention=True`` per (model, clip), cached; changing a layer or head only redraws.

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
        self.clip = w.Dropdown(options=list(clips), description="clip")
        self.model = w.Dropdown(options=list(models), description="model")
        self.layer = w.Dropdown(options=[0], description="self layer")
        self.head = w.Dropdown(options=[0], description="self head")
        self.cross_layer = w.Dropdown(options=[0], description="cross layer")
        self.cross_head = w.Dropdown(options=[0], description="cross head")
        self.image = w.Image(format="png")
        self.status = w.HTML()
        self._updating = False
        self._sync_choices()
        for ctl in (self.clip, self.model, self.layer, self.head, self.cross_layer, self.cross_head):
            ctl.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.clip, self.model]), w.HBox([self.layer, self.head]),
                              w.HBox([self.cross_layer, self.cross_head]), self.status, self.image])
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
        out: dict[str, np.ndarray | None] = {}
        for kind, (layer, head) in self._choice().items():
            layers = att[kind]
            out[kind] = layers[layer][head] if layers else None
        if out["cross"] is not None:
            out["cross"] = _frames_from_tokens(out["cross"], out["cross"].shape[0])
        return out

    def _choice(self) -> dict[str, tuple[int, int]]:
        """``{kind: (layer, head)}`` chosen for each attention module."""
        return {"self": (self.layer.value, self.head.value), "cross": (self.cross_layer.value, self.cross_head.value)}

    def figure(self) -> Figure:
        """The current view as a figure."""
        maps = self.current_maps()
        c = self.clips[self.clip.value]
        fig = Figure(figsize=(13, 7.5), layout="constrained")
        ax = fig.subplot_mosaic([["mel", "mel"], ["self", "cross"], ["strip", "strip"]],
                                height_ratios=[1, 2.4, 0.9])
        ax["mel"].imshow(c.audio[0].T, origin="lower", aspect="auto", cmap="magma", extent=(0, 5, 0, c.audio.shape[-1]))
        ax["mel"].set(title=f"{self.clip.value}: log-mel (left channel)", ylabel="mel bin")
        for kind, title in (("self", "audio self-attention"), ("cross", "audio→video cross-attention")):
            a = maps[kind]
            if a is None:
                ax[kind].text(0.5, 0.5, f"no {title}\nin this model", ha="center", va="center")
                ax[kind].set_axis_off()
                continue
            im = ax[kind].imshow(a, origin="lower", aspect="auto", cmap="viridis", extent=(0, 5, 0, 5))
            fig.colorbar(im, ax=ax[kind], shrink=0.8)
            layer, head = self._choice()[kind]
            n_layers, n_heads = self.module_shape(kind)
            ax[kind].set(title=f"{title}: layer {layer} of {n_layers}, head {head} of {n_heads}",
                         xlabel="key time (s)" + (" (video frame)" if kind == "cross" else ""), ylabel="query time (s)")
        if c.frames is not None:
            idx = np.linspace(0, len(c.frames) - 1, 10).round().astype(int)
            ax["strip"].imshow(np.concatenate([c.frames[k] for k in idx], axis=1))
            ax["strip"].set_xticks([c.frames.shape[2] * (j + 0.5) for j in range(10)], [f"{k / 10:.1f}s" for k in idx])
            ax["strip"].set_yticks([])
        else:
            ax["strip"].set_axis_off()
        fig.suptitle(f"model: {self.model.value}")
        return fig

    def redraw(self) -> None:
        """Recompute the current maps and refresh the image widget."""
        self.shown = self.current_maps()
        fig = self.figure()
        self.image.value = figure_png(fig)
        if self._static is not None:  # keep the saved notebook's picture equal to the current view
            from IPython.display import Image

            self._static.update(Image(self.image.value))
        self.status.value = (f"<b>{self.model.value}</b> on <b>{self.clip.value}</b> — self-attention layer "
                             f"{self.layer.value}, head {self.head.value}; cross-attention layer {self.cross_layer.value}, "
                             f"head {self.cross_head.value}")

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
