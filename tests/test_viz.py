"""Figures from fake run records, and the attention explorer driven through its widget API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from avseld import report, viz
from avseld.layout import N_CLASSES

from _study_fakes import make_dataset, make_run


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("viz")
    root = make_dataset(tmp / "data" / "synth_v")
    runs = {"Baseline replica": [make_run(tmp, root, "baseline_av-aaaa-s0", 0, az_noise=25)],
            "AV-SELD": [make_run(tmp, root, "avseld-bbbb-s0", 0, az_noise=5)]}
    return tmp, root, runs


def _png(path):
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01  # not a blank canvas
    return img


def test_result_figures_are_written_atomically(fake, tmp_path):
    workdir, root, runs = fake
    table, std = report.build_table1(runs, workdir)
    figs = {
        "table1": viz.plot_table1(table, std),
        "curves": viz.plot_training_curves(runs),
        "classwise": viz.plot_classwise(report.classwise_table(runs)),
        "traj": viz.plot_trajectories(*report.load_clip_pair(runs["AV-SELD"][0])[1:], clip="c"),
        "confusion": viz.plot_onscreen_confusions({k: report.onscreen_confusion(v) for k, v in runs.items()}),
        "stats": viz.plot_dataset_statistics(report.label_table(root)),
    }
    for name, fig in figs.items():
        _png(viz.save_figure(fig, tmp_path / f"{name}.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in figs)
    # Table 1 figure: one bar per row and metric, heights = the table
    ax = figs["table1"].axes[0]
    assert [round(b.get_height(), 9) for b in ax.patches] == [round(v, 9) for v in table["F20_on"]]
    # training curves: one epoch axis per log record
    line = next(ln for ln in figs["curves"].axes[0].lines if ln.get_label().endswith("train_loss"))
    assert list(line.get_xdata()) == [0, 1, 2]


def test_ablation_plot_bars_equal_deltas(fake):
    workdir, _, runs = fake
    df = report.ablation_table({"avseld": ("AV-SELD", "", runs["AV-SELD"]),
                                "worse": ("worse", "", runs["Baseline replica"])}, "avseld", workdir)
    fig = viz.plot_ablations(df)
    widths = [p.get_width() for p in fig.axes[1].patches]  # DOAE panel
    assert widths == pytest.approx(df["d_DOAE"].tolist())


def test_clip_figure_shows_the_logmel():
    logmel = np.random.default_rng(0).normal(size=(2, 251, 64)).astype(np.float32)
    frames = np.zeros((50, 18, 32, 3), np.uint8)
    labels = np.array([[3, 1, 0, 20, 150, 1], [4, 1, 0, 22, 150, 1]], float)
    fig = viz.plot_clip(logmel, frames, labels, title="x")
    assert np.array_equal(fig.axes[0].images[0].get_array(), logmel[0].T)
    assert len(fig.axes) == 4


@pytest.fixture(scope="module")
def explorer():
    from avseld.models import build_model

    torch.manual_seed(0)
    models = {"avseld": build_model("avseld"), "baseline": build_model("baseline_av"), "audio": build_model("avseld_audio")}
    with torch.no_grad():  # sharpen the untrained attention so that heads differ visibly
        for m in models.values():
            for mod in m.modules():
                if isinstance(mod, torch.nn.MultiheadAttention):
                    mod.in_proj_weight.mul_(8.0)
    rng = np.random.default_rng(0)
    clips = {f"clip{i}": viz.ClipInputs(
        audio=rng.normal(size=(2, 251, 64)).astype(np.float32),
        video_by_run={"avseld": rng.normal(size=(50, 49)), "baseline": rng.normal(size=(50, 49)), "audio": None},
        frames=rng.integers(0, 255, (50, 18, 32, 3), dtype=np.uint8)) for i in range(2)}
    return viz.AttentionExplorer(models, clips)


def test_explorer_changing_the_head_redraws(explorer):
    ex = explorer
    ex.model.value = "avseld"
    ex.cross_layer.value, ex.cross_head.value = 0, 0
    before_cross, before_img = ex.shown["cross"].copy(), ex.image.value
    assert ex.shown["self"].shape == (50, 50) and before_cross.shape == (50, 50)
    np.testing.assert_allclose(before_cross.sum(-1), 1.0, atol=1e-4)  # rows are distributions
    ex.cross_head.value = 1
    assert np.abs(ex.shown["cross"] - before_cross).max() > 1e-3
    assert ex.image.value != before_img and ex.image.value[:4] == b"\x89PNG"
    # the drawn matrix is the model's own head-1 cross-attention of layer 0
    att = ex.attention("avseld", ex.clip.value)
    np.testing.assert_allclose(ex.shown["cross"], att["cross"][0][1])


def test_explorer_offers_each_modules_own_heads_and_names_what_it_draws(explorer):
    ex = explorer
    ex.model.value = "avseld"  # ATEM: 2 heads; fusion decoder: 8 heads, 2 layers
    assert list(ex.head.options) == [0, 1] and list(ex.cross_head.options) == list(range(8))
    assert list(ex.layer.options) == [0, 1] and list(ex.cross_layer.options) == [0, 1]
    ex.head.value, ex.cross_head.value, ex.cross_layer.value = 1, 7, 1
    att = ex.attention("avseld", ex.clip.value)
    np.testing.assert_allclose(ex.shown["self"], att["self"][0][1])
    np.testing.assert_allclose(ex.shown["cross"], att["cross"][1][7])
    titles = [a.get_title() for a in ex.figure().axes]
    assert "audio self-attention: layer 0 of 2, head 1 of 2" in titles
    assert "audio→video cross-attention: layer 1 of 2, head 7 of 8" in titles
    ex.model.value = "baseline"
    assert list(ex.head.options) == list(range(8)) and list(ex.cross_head.options) == list(range(8))
    ex.model.value = "audio"  # no cross-attention: its choices are disabled
    assert ex.cross_head.disabled and ex.shown["cross"] is None


def test_explorer_model_and_clip_choices(explorer):
    ex = explorer
    ex.model.value = "audio"
    assert ex.shown["cross"] is None and ex.shown["self"] is not None  # audio only: no cross-attention
    ex.model.value = "avseld"
    a0 = ex.shown["self"].copy()
    ex.clip.value = "clip1"
    assert not np.allclose(ex.shown["self"], a0)


def test_explorer_saves_default_views(explorer, tmp_path):
    paths = explorer.save_default_views(tmp_path)
    assert len(paths) == 3 and all(p.suffix == ".png" for p in paths)
    for p in paths:
        _png(p)


def test_onscreen_confusion_without_matched_events_says_n_a():
    fig = viz.plot_onscreen_confusions({"none": np.zeros((2, 2), int), "some": np.array([[3, 1], [0, 4]])})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "none: on-screen acc n/a (no matched event)"
    assert titles[1] == "some: on-screen acc 88%"


def test_explorer_on_read_only_cached_arrays_warns_nothing():
    """Cached features are read-only memory maps; the explorer must not make torch warn about them."""
    import warnings

    from avseld.models import build_model

    audio = np.zeros((2, 251, 64), np.float32)
    video = np.zeros((50, 49), np.float32)
    audio.flags.writeable = video.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = viz.AttentionExplorer({"m": build_model("avseld")}, {"c": viz.ClipInputs(audio, {"m": video})})
        ex.attention("m", "c")


def test_explorer_keeps_the_displayed_picture_equal_to_the_current_view(explorer):
    """show() displays a plain PNG beside the widget; every redraw updates it in place (a saved notebook
    keeps the last view as a picture that renders without a kernel)."""
    class Handle:  # what IPython's display(..., display_id=True) returns inside a kernel
        def __init__(self):
            self.shown = []

        def update(self, obj):
            self.shown.append(obj.data)

    ex = explorer
    ex.model.value = "avseld"
    ex._static = handle = Handle()
    try:
        ex.cross_head.value = 3 if ex.cross_head.value != 3 else 2
        assert handle.shown and handle.shown[-1] == ex.image.value and handle.shown[-1][:4] == b"\x89PNG"
    finally:
        ex._static = None
