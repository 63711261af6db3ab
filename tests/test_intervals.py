"""Comparisons between systems: the paired bootstrap over test clips (seeds pooled), the comparison and
convergence tables, and the video controls (zeroed / another clip's video)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avseld import intervals, report
from avseld.metrics.scoring import scores_from_statistics

from _study_fakes import make_dataset, make_run


def _stats(names, stats):
    return intervals.RunStatistics(tuple(names), np.asarray(stats, dtype=np.float64))


def _fake_stats(rng, n_clips, tp_rate):
    """(n, 13, 9) statistics: 10 references per clip and class, ``tp_rate`` of them found within the thresholds."""
    s = np.zeros((n_clips, 13, 9))
    tp = rng.binomial(10, tp_rate, size=(n_clips, 13)).astype(float)
    s[..., 0] = tp          # TP
    s[..., 1] = tp          # TP_on
    s[..., 3] = 10 - tp     # FN
    s[..., 4] = tp          # K matched pairs
    s[..., 5] = 5.0 * tp    # angular error sum (5 degrees each)
    s[..., 7] = 0.1 * tp
    s[..., 8] = tp
    return s


def test_identical_systems_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(30)]
    a = _stats(names, _fake_stats(rng, 30, 0.5))
    d = intervals.paired_difference([a], [a], n_boot=200)
    for k in intervals.COMPARED_KEYS:
        assert d[k]["diff"] == 0 and d[k]["low"] == 0 and d[k]["high"] == 0


def test_a_clearly_better_system_gets_an_interval_that_excludes_zero_and_covers_the_truth():
    rng = np.random.default_rng(1)
    names = [f"c{i}" for i in range(60)]
    good = [_stats(names, _fake_stats(rng, 60, 0.7)) for _ in range(2)]
    bad = [_stats(names, _fake_stats(rng, 60, 0.5)) for _ in range(2)]
    d = intervals.paired_difference(good, bad, n_boot=500)["F20"]
    # F = TP / (TP + 0.5 FN) with 10 references: 7 / 8.5 against 5 / 7.5, i.e. +15.7 points expected
    assert intervals.excludes_zero(d) and d["low"] > 0
    assert d["low"] < 100 * (7 / 8.5 - 5 / 7.5) < d["high"]
    assert d["half_width"] < 4


def test_the_point_difference_is_that_of_the_pooled_scores():
    rng = np.random.default_rng(2)
    names = [f"c{i}" for i in range(20)]
    a = [_stats(names, _fake_stats(rng, 20, p)) for p in (0.4, 0.6)]
    b = [_stats(names, _fake_stats(rng, 20, 0.5))]
    d = intervals.paired_difference(a, b, n_boot=100)
    fa = scores_from_statistics(a[0].stats.sum(0) + a[1].stats.sum(0))[0][0]
    fb = scores_from_statistics(b[0].stats.sum(0))[0][0]
    assert d["F20"]["diff"] == pytest.approx(100 * (fa - fb))
    assert intervals.pooled_scores(a)["F20"] == pytest.approx(100 * fa)


def test_clips_are_paired_by_name_not_by_row():
    rng = np.random.default_rng(3)
    names = [f"c{i}" for i in range(25)]
    s = _fake_stats(rng, 25, 0.5)
    order = rng.permutation(25)
    shuffled = _stats([names[i] for i in order], s[order])
    d = intervals.paired_difference([shuffled], [_stats(names, s)], n_boot=100)
    assert d["F20"]["low"] == d["F20"]["high"] == 0


def test_comparison_and_convergence_tables_from_run_folders(tmp_path):
    root = make_dataset(tmp_path / "data", n_clips=12)
    good = [make_run(tmp_path, root, f"avseld-aaaa-s{s}", s, az_noise=3, drop=0.05) for s in (0, 1)]
    bad = [make_run(tmp_path, root, f"baseline_av-bbbb-s{s}", s, az_noise=30, drop=0.5) for s in (0, 1)]
    df = report.comparison_table([(report.Side("AV-SELD", tuple(good)), report.Side("replica", tuple(bad)))], n_boot=300)
    r = df.iloc[0]
    assert r["d_F20"] > 0 and r["lo_F20"] > 0  # far better predictions: the interval excludes 0
    assert r["d_F20"] == pytest.approx(r["F20"] - r["F20_against"])
    md = report.comparison_markdown(df)
    assert "**+" in md and "AV-SELD" in md
    # the fakes' logs: val F20 0.0, 0.1, ..., 0.7 over 8 epochs -> last quarter (2 epochs) gains 20 points
    for run in good:
        with open(run / "log.jsonl", "w") as f:
            for e in range(8):
                f.write(json.dumps({"epoch": e + 1, "val": {"F20": 0.1 * e}, "best_epoch": e + 1}) + "\n")
    for run in bad:
        with open(run / "log.jsonl", "w") as f:
            for e in range(8):
                f.write(json.dumps({"epoch": e + 1, "val": {"F20": 0.3 + (0.001 * e if e > 4 else 0.05 * e)},
                                    "best_epoch": 8}) + "\n")
    conv = report.convergence_table({"AV-SELD": good, "replica": bad}, tmp_path)
    assert list(conv["converged"]) == [False, False, True, True]
    assert conv["last_quarter_gain"].iloc[0] == pytest.approx(20.0)
    assert conv["last_quarter_gain"].iloc[2] == pytest.approx(0.2)
    # the fitted gain: a line through epochs 6-8; exact on the straight 0.1/epoch logs (2 epochs x 10 points)
    assert conv["last_quarter_trend"].iloc[0] == pytest.approx(20.0)
    assert conv["last_quarter_trend"].iloc[2] == pytest.approx(0.2)
    with open(good[0] / "log.jsonl", "w") as f:  # one low epoch at the quarter's start: the endpoint gain jumps
        for e, v in enumerate([0.5] * 8 + [0.45, 0.5, 0.5, 0.5]):  # 12 epochs: the quarter is epochs 9-12
            f.write(json.dumps({"epoch": e + 1, "val": {"F20": v}, "best_epoch": 1}) + "\n")
    dip = report.convergence_table({"AV-SELD": good[:1]}, tmp_path).iloc[0]
    assert dip["last_quarter_gain"] == pytest.approx(5.0) and not dip["converged"]
    assert dip["last_quarter_trend"] == pytest.approx(4.5)  # slope 1.5 pts/epoch x 3 epochs
    assert "| +5.0 | +4.5 |" in report.convergence_markdown(report.convergence_table({"AV-SELD": good[:1]}, tmp_path))
