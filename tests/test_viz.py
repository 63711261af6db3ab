"""Figures from fake run records, and the attention explorer driven through its widget API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from avseld import report, stats, viz
from avseld.layout import N_CLASSES
from avseld.runs import RunFolder

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
        "stats": viz.plot_dataset_statistics(stats.label_table(stats.load_labels(root))),
    }
    for name, fig in figs.items():
        _png(viz.save_figure(fig, tmp_path / f"{name}.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in figs)
    # Table 1 figure: one bar per row and metric, heights = the table
    ax = figs["table1"].axes[0]
    assert [round(b.get_height(), 9) for b in ax.patches] == [round(v, 9) for v in table["F20_on"]]
    # training curves: the x axis is the epochs the run's log records
    line = next(ln for ln in figs["curves"].axes[0].lines if ln.get_label().endswith("train_loss"))
    assert list(line.get_xdata()) == [r["epoch"] for r in RunFolder(runs["Baseline replica"][0]).read_log()]


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
        frames=rng.integers(0, 255, (50, 18, 32, 3), dtype=np.uint8),
        labels=LABELS, predictions_by_run={"avseld": PREDICTIONS}) for i in range(2)}
    return viz.AttentionExplorer(models, clips)


# reference rows (frame, class, source, azimuth, distance, onscreen): class 1 on-screen, class 4 off-screen
LABELS = np.array([[f, 1, 0, 20 + f, 150, 1] for f in range(3, 9)] + [[f, 4, 0, -60, 200, 0] for f in range(30, 34)], float)
PREDICTIONS = np.array([[f, 1, 0, 35, 140, 1] for f in range(4, 7)] + [[40, 7, 0, 170, 300, 0]], float)


def _ax(fig, prefix):
    """The one axes of ``fig`` whose title starts with ``prefix``."""
    found = [a for a in fig.axes if a.get_title().startswith(prefix)]
    assert len(found) == 1, [a.get_title() for a in fig.axes]
    return found[0]


def _drawn(fig):
    """Lay out and render ``fig`` (constrained layout runs at draw time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


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
    titles = [a.get_title().split("\n")[0] for a in ex.figure().axes]  # a second line may say "near uniform"
    assert "audio self-attention: layer 0 of 2, head 1 of 2" in titles
    assert "audio→video cross-attention: layer 1 of 2, head 7 of 8" in titles
    # the status line under the dropdowns names the drawn maps by their titles
    assert ("audio self-attention: layer 0 of 2, head 1 of 2 · audio→video cross-attention: layer 1 of 2, head 7 of 8"
            in ex.status.value)
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


def _write_log(run, values):
    """A log.jsonl whose validation DOAE/RDE/OSA take ``values`` (None: undefined that epoch, as the
    engine writes an epoch without a detection)."""
    run.mkdir(parents=True)
    rows = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": 0.5,
             "val": {"F20": 0.1 * e, "F20_on": 0.05 * e, "DOAE": v, "RDE": None if v is None else v / 100,
                     "OSA": None if v is None else 0.5}} for e, v in enumerate(values)]
    (run / "log.jsonl").write_text("".join(__import__("json").dumps(r) + "\n" for r in rows))
    return run


def _visible_points(line):
    """Finite points of a line that are seen: every one with a marker, else only those joined to a
    finite neighbour (a line alone draws nothing through an isolated point)."""
    y = np.asarray(line.get_ydata(), float)
    ok = np.isfinite(y)
    if line.get_marker() not in (None, "None", "", " ") and line.get_markersize() > 0:
        return int(ok.sum())
    joined = ok & (np.r_[False, ok[:-1]] | np.r_[ok[1:], False])
    return int(joined.sum())


def test_training_curves_draw_every_systems_points(tmp_path):
    """A system whose DOAE/RDE/OSA are undefined in some epochs (no detection) still shows each of its
    defined values in every metric panel (the smoke study's 2-epoch runs showed only AV-SELD)."""
    logs = {"Baseline replica": [None, 52.0], "AV-SELD": [40.0, 38.0], "AV-SELD+": [55.0, None, 50.0, None]}
    runs = {k: [_write_log(tmp_path / k, v)] for k, v in logs.items()}
    fig = viz.plot_training_curves(runs)
    for ax, metrics in zip(fig.axes[2:], (("DOAE",), ("RDE", "OSA"))):
        for si, (system, values) in enumerate(logs.items()):
            for metric in metrics:
                line = next(ln for ln in ax.lines if ln.get_label() == f"{system}: val/{metric}")
                assert line.get_color() == viz._cmap(2 * si)
                expected = sum(v is not None for v in values)
                assert _visible_points(line) == expected, (ax.get_title(), system, metric)


def test_trajectory_legend_names_the_classes_outside_the_data():
    from avseld.layout import CLASS_NAMES

    fig = _drawn(viz.plot_trajectories(LABELS, PREDICTIONS, clip="c"))
    ax_az, ax_d = fig.axes[:2]
    legend = ax_az.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [CLASS_NAMES[1], CLASS_NAMES[4], CLASS_NAMES[7], "reference (line)", "prediction"]
    box = legend.get_window_extent()
    for ax in (ax_az, ax_d):
        assert not box.overlaps(ax.get_window_extent())  # beside the axes, never over the data


def test_explorer_masks_attention_outside_the_fusion_window():
    """AV-SELD+'s cross-attention is exactly 0 outside its +-1-frame window by construction: drawn masked
    (grey), with a legend saying so; a model without a window has nothing masked."""
    from matplotlib.colors import to_rgba

    from avseld.models import build_model

    torch.manual_seed(0)
    plus, full = build_model("avseld_plus"), build_model("avseld")
    assert plus.fusion_window == 1 and full.fusion_window is None
    rng = np.random.default_rng(1)
    clip = viz.ClipInputs(rng.normal(size=(2, 251, 64)).astype(np.float32),
                          {"plus": rng.normal(size=(50, 49)), "full": rng.normal(size=(50, 49))})
    ex = viz.AttentionExplorer({"plus": plus, "full": full}, {"c": clip})
    ex.model.value = "plus"
    ex.cross_layer.value, ex.cross_head.value = 1, 3
    raw = ex.attention("plus", "c")["cross"][1][3]
    outside = np.abs(np.arange(50)[:, None] - np.arange(50)[None, :]) > 1
    assert np.all(raw[outside] == 0.0) and np.all(raw[~outside] > 0)  # the model's own maps: 0 outside
    ax = _ax(ex.figure(), "audio→video cross-attention")
    img = ax.images[0].get_array()
    assert np.array_equal(np.ma.getmaskarray(img), outside)
    np.testing.assert_allclose(img.compressed(), raw[~outside])
    assert ax.images[0].get_cmap().get_bad() == pytest.approx(to_rgba(viz.OUTSIDE_COLOUR))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "outside the fusion window: not attended, by construction"]
    # the colour scale spans the weights inside the window only
    assert ax.images[0].get_clim() == pytest.approx((raw[~outside].min(), raw[~outside].max()))
    ex.model.value = "full"
    ax = _ax(ex.figure(), "audio→video cross-attention")
    assert not np.ma.getmaskarray(ax.images[0].get_array()).any() and ax.get_legend() is None


def test_explorer_draws_reference_and_predicted_events_on_the_clip_time(explorer):
    from avseld.layout import CLASS_NAMES

    ex = explorer
    ex.model.value = "avseld"
    fig = ex.figure()

    def points(ax, label):
        colls = [c for c in ax.collections if c.get_label() == label]
        return np.concatenate([c.get_offsets() for c in colls]) if colls else np.zeros((0, 2))

    for ax, rows in ((_ax(fig, "reference events"), LABELS), (_ax(fig, "predicted events"), PREDICTIONS)):
        for label, on in (("on-screen", 1), ("off-screen", 0)):
            sel = rows[rows[:, 5] == on]
            # each event at its 100-ms frame's centre (seconds) and its azimuth
            np.testing.assert_allclose(points(ax, label), np.c_[(sel[:, 0] + 0.5) * 0.1, sel[:, 3]])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [CLASS_NAMES[1], CLASS_NAMES[4], CLASS_NAMES[7], "on-screen", "off-screen"]
    ex.model.value = "baseline"  # no saved predictions for this model: said, nothing drawn
    ax = _ax(ex.figure(), "predicted events")
    assert not ax.collections and [t.get_text() for t in ax.texts] == ["no saved predictions for this model"]


def test_explorer_panels_share_one_time_axis_in_seconds(explorer):
    ex = explorer
    ex.model.value = "avseld"
    c = ex.clips[ex.clip.value]
    fig = _drawn(ex.figure())
    panels = [_ax(fig, p) for p in (f"{ex.clip.value}: log-mel", "audio self-attention", "audio→video cross-attention",
                                    "reference events", "predicted events", "video frames")]
    for ax in panels:
        assert ax.get_xlim() == (0.0, 5.0)
    lefts = {round(ax.get_position().x0, 4) for ax in panels}
    rights = {round(ax.get_position().x1, 4) for ax in panels}
    assert len(lefts) == 1 and len(rights) == 1  # the same horizontal span on the page
    legend = fig.legends[0].get_window_extent()
    assert not any(legend.overlaps(ax.get_window_extent()) for ax in panels)  # the class legend covers no data
    mel = panels[0].images[0]
    assert mel.get_extent()[:2] == pytest.approx([-0.01, 5.01])  # 251 frames of 20 ms, centred
    assert panels[1].images[0].get_extent() == pytest.approx([0, 5, 0, 5])  # 50 frames of 100 ms
    strip = panels[-1].images
    assert len(strip) == 10
    for img in strip:
        x0, x1 = img.get_extent()[:2]
        k = int(round((x0 + x1) / 2 / 0.1 - 0.5))  # the frame at the middle of its slot (10 fps)
        assert x0 <= k / 10 <= x1 and np.array_equal(img.get_array(), c.frames[k])


@pytest.mark.parametrize("channel", ["left", "right", "ld"])
def test_explorer_spectrogram_choice(explorer, channel):
    ex = explorer
    ex.spectrogram.value = channel
    try:
        audio = ex.clips[ex.clip.value].audio
        expected = {"left": audio[0], "right": audio[1], "ld": audio[0] - audio[1]}[channel]
        img = _ax(ex.figure(), f"{ex.clip.value}: ").images[0]
        np.testing.assert_array_equal(img.get_array(), expected.T)
        if channel == "ld":  # diverging, centred on 0 dB
            lo, hi = img.get_clim()
            assert lo == -hi == pytest.approx(-np.abs(expected).max()) and img.get_cmap().name.startswith("RdBu")
    finally:
        ex.spectrogram.value = "left"


def test_explorer_common_colour_scale(explorer):
    ex = explorer
    ex.model.value = "avseld"
    att = ex.attention("avseld", ex.clip.value)
    ex.cross_layer.value, ex.cross_head.value = 0, 2
    own = _ax(ex.figure(), "audio→video cross-attention").images[0].get_clim()
    assert own == pytest.approx((att["cross"][0][2].min(), att["cross"][0][2].max()))
    ex.common_scale.value = True
    try:
        top = max(float(h.max()) for layer in att["cross"] for h in layer)
        clims = []
        for layer, head in ((0, 2), (1, 5)):
            ex.cross_layer.value, ex.cross_head.value = layer, head
            clims.append(_ax(ex.figure(), "audio→video cross-attention").images[0].get_clim())
        assert clims == [pytest.approx((0.0, top))] * 2
    finally:
        ex.common_scale.value = False


def test_near_uniform_maps_say_so():
    from avseld.models import build_model

    assert viz.uniformity(np.full((4, 5), 0.2)) == pytest.approx(0.0)
    assert viz.uniformity(np.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]])) == pytest.approx(0.5)
    # with a window, only the allowed keys count: rows of 2 allowed keys at the edges, 3 inside
    mask = viz.window_mask(4, 4, 1)
    a = np.where(mask, 0.0, 1.0) / (~mask).sum(-1, keepdims=True)
    assert viz.uniformity(a, mask) == pytest.approx(0.0) and viz.uniformity(a) > 0.5
    torch.manual_seed(0)
    flat = build_model("avseld")
    with torch.no_grad():  # queries and keys all 0: every weight exactly 1 / keys
        for mod in flat.modules():
            if isinstance(mod, torch.nn.MultiheadAttention):
                mod.in_proj_weight.zero_()
                mod.in_proj_bias.zero_()
    rng = np.random.default_rng(2)
    clip = viz.ClipInputs(rng.normal(size=(2, 251, 64)).astype(np.float32), {"flat": rng.normal(size=(50, 49))})
    ex = viz.AttentionExplorer({"flat": flat}, {"c": clip})
    title = _ax(ex.figure(), "audio self-attention").get_title()
    assert "near uniform: every weight within ±10% of 1/keys" in title


def test_explorer_sharp_maps_are_not_called_uniform(explorer):
    ex = explorer
    ex.model.value = "avseld"
    ex.layer.value, ex.head.value = 1, 1  # the untrained stack's first layer is near uniform, its second is not
    try:
        assert viz.uniformity(ex.shown["self"]) > viz.NEAR_UNIFORM
        assert "near uniform" not in _ax(ex.figure(), "audio self-attention").get_title()
    finally:
        ex.layer.value, ex.head.value = 0, 0


def test_explorer_dropdowns_are_wide_enough_for_the_whole_run_name():
    from avseld.models import build_model

    name = "Baseline replica (baseline_av-1dff1e43-s0)"
    clip = viz.ClipInputs(np.zeros((2, 251, 64), np.float32), {name: np.zeros((50, 49))})
    ex = viz.AttentionExplorer({name: build_model("baseline_av")}, {"fold4_room4_mix006": clip})
    width = ex.model.layout.width
    assert width.endswith("ch") and int(width[:-2]) >= len(name) + 12  # + the description and the arrow
