"""Report: Table 1 / ablation tables re-scored from saved predictions, on fake run folders."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from avseld import report
from avseld.config import Config
from avseld.dataset import read_label_csv, write_label_csv
from avseld.errors import DataError
from avseld.metrics import evaluate_folders

from _study_fakes import TEST_SPLIT, make_dataset, make_run


@pytest.fixture()
def fake(tmp_path):
    root = make_dataset(tmp_path / "data" / "synth_x")
    runs = {
        "Baseline replica": [make_run(tmp_path, root, f"baseline_av-aaaa-s{s}", s, az_noise=25, drop=0.4) for s in (0, 1)],
        "AV-SELD": [make_run(tmp_path, root, f"avseld-bbbb-s{s}", s, az_noise=8, drop=0.2) for s in (0, 1)],
    }
    return tmp_path, root, runs


def test_table1_rows_are_means_of_rescored_runs(fake):
    workdir, root, runs = fake
    table, std = report.build_table1(runs, workdir)
    assert list(table.columns) == list(report.TABLE1_COLUMNS)
    pub = table[table["source"] == "published"].set_index("system")
    assert pub.loc["Official Baseline", ["F20_on", "DOAE", "RDE", "OSA"]].tolist() == [20.0, 23.8, 40.0, 80.0]
    assert pub.loc["Replicated Baseline", ["F20_on", "DOAE", "RDE", "OSA"]].tolist() == [18.8, 25.7, 39.0, 79.9]
    assert pub.loc["AV-SELD", ["F20_on", "DOAE", "RDE", "OSA"]].tolist() == [23.1, 20.1, 34.0, 79.1]
    assert pub["F20"].isna().all()
    ours = table[table["source"] == "this study"].set_index("system")
    for label, dirs in runs.items():
        per_seed = [evaluate_folders(root / "metadata_dev" / TEST_SPLIT, d / "predictions" / TEST_SPLIT) for d in dirs]
        assert ours.loc[label, "F20_on"] == pytest.approx(100 * np.mean([m["F20_on"] for m in per_seed]), abs=1e-12)
        assert ours.loc[label, "DOAE"] == pytest.approx(np.mean([m["DOAE"] for m in per_seed]), abs=1e-12)
        assert ours.loc[label, "RDE"] == pytest.approx(100 * np.mean([m["RDE"] for m in per_seed]), abs=1e-12)
        assert ours.loc[label, "OSA"] == pytest.approx(100 * np.mean([m["OSA"] for m in per_seed]), abs=1e-12)
        assert ours.loc[label, "n_seeds"] == 2
        # the spread is the sample std over seeds (ddof=1): for two seeds |a - b| / sqrt(2)
        doae = [m["DOAE"] for m in per_seed]
        ours_std = std[(table["source"] == "this study") & (table["system"] == label)]["DOAE"].item()
        assert ours_std == pytest.approx(abs(doae[0] - doae[1]) / np.sqrt(2), abs=1e-9)
        assert ours.loc[label, "runs"] == ";".join(f"data/runs/{d.name}" for d in dirs)
    # the noisier system is worse, as constructed
    assert ours.loc["AV-SELD", "F20"] > ours.loc["Baseline replica", "F20"]
    assert ours.loc["AV-SELD", "DOAE"] < ours.loc["Baseline replica", "DOAE"]
    assert std.loc[3:, "DOAE"].gt(0).all() and std.loc[:2, "DOAE"].isna().all()


def test_table1_files_round_trip_unrounded(fake, tmp_path):
    workdir, _, runs = fake
    table, std = report.build_table1(runs, workdir)
    csv, md = report.write_table1(table, std, tmp_path / "figures")
    back = report.read_table1(csv)
    pd.testing.assert_frame_equal(back[["F20_on", "DOAE", "RDE", "OSA", "F20"]],
                                  table[["F20_on", "DOAE", "RDE", "OSA", "F20"]], check_exact=True)
    assert back["runs"].tolist()[:3] == ["", "", ""]
    text = md.read_text()
    assert "| Official Baseline | published | 20.0 | 23.8 | 40.0 | 80.0 | – |" in text
    row = table.iloc[4]
    assert f"{row['DOAE']:.1f} ± {std.loc[4, 'DOAE']:.1f}" in text
    assert not list((tmp_path / "figures").glob(".*tmp*"))  # atomic writes leave no temporaries


def test_perfect_predictions_score_100(tmp_path):
    root = make_dataset(tmp_path / "data" / "synth_p", n_clips=3)
    run = make_run(tmp_path, root, "avseld-pppp-s0", 0, az_noise=0, drop=0)
    pred_dir = run / "predictions" / TEST_SPLIT
    for p in (root / "metadata_dev" / TEST_SPLIT).glob("*.csv"):  # exact copies, on-screen included
        rows = read_label_csv(p)
        rows[:, 2] = 0
        write_label_csv(pred_dir / p.name, rows)
    # macro F counts the classes absent from 3 clips as 0; the run's own eval config is respected
    assert report.system_row("perfect", [run], tmp_path)[0]["F20"] < 100.0
    Config().with_overrides({"eval.average": "micro"}).save(run / "config.yaml")
    row, _ = report.system_row("perfect", [run], tmp_path)
    assert row["F20"] == pytest.approx(100.0) and row["F20_on"] == pytest.approx(100.0)
    assert row["DOAE"] == pytest.approx(0.0, abs=1e-9) and row["RDE"] == pytest.approx(0.0, abs=1e-9)
    assert row["OSA"] == pytest.approx(100.0)


def test_rescoring_follows_the_csvs_not_the_record(fake):
    """Table cells come from the prediction files: editing a CSV changes the table."""
    workdir, _, runs = fake
    before, _ = report.system_row("x", runs["AV-SELD"][:1], workdir)
    pred = next((runs["AV-SELD"][0] / "predictions" / TEST_SPLIT).glob("*.csv"))
    write_label_csv(pred, np.zeros((0, 6)))
    after, _ = report.system_row("x", runs["AV-SELD"][:1], workdir)
    assert after["F20"] < before["F20"]


def test_ablation_table_deltas(fake):
    workdir, _, runs = fake
    variants = {"avseld": ("AV-SELD", "ref", runs["AV-SELD"]), "worse": ("worse", "noisier", runs["Baseline replica"])}
    df = report.ablation_table(variants, "avseld", workdir).set_index("key")
    assert (df.loc["avseld", [f"d_{k}" for k in report.METRIC_KEYS]] == 0).all()
    for k in report.METRIC_KEYS:
        assert df.loc["worse", f"d_{k}"] == pytest.approx(df.loc["worse", k] - df.loc["avseld", k])
    assert df.loc["worse", "d_F20"] < 0
    assert "| worse |" in report.ablation_markdown(df.reset_index())
    with pytest.raises(DataError, match="reference system 'nope'"):
        report.ablation_table(variants, "nope")


def test_onscreen_confusion_counts(tmp_path):
    root = tmp_path / "data" / "synth_c"
    ref = np.array([[0, 1, 0, 10, 100, 1], [1, 1, 0, 10, 100, 1], [2, 2, 0, -40, 200, 0], [3, 2, 0, -40, 200, 0]], float)
    write_label_csv(root / "metadata_dev" / TEST_SPLIT / "fold4_room1_mix001.csv", ref)
    run = make_run(tmp_path, root, "avseld-cccc-s0", 0)
    pred = np.array([[0, 1, 0, 12, 100, 1], [1, 1, 0, 15, 100, 0], [2, 2, 0, -45, 200, 0], [3, 2, 0, 60, 200, 1]], float)
    write_label_csv(run / "predictions" / TEST_SPLIT / "fold4_room1_mix001.csv", pred)
    cm = report.onscreen_confusion([run])
    assert cm.tolist() == [[1, 0], [1, 1]]  # frame 3 is 100 degrees off: unmatched


def test_missing_metrics_record_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="metrics.json"):
        report.score_run(tmp_path / "no_run")


def test_azimuth_agreement_tells_a_learnt_azimuth_from_a_front_guess(tmp_path):
    root = tmp_path / "data" / "synth_z"
    ref = np.array([[0, 1, 0, 60, 100, 0], [1, 1, 0, -40, 100, 0], [2, 2, 0, 20, 200, 0], [3, 2, 0, -80, 200, 1],
                    [4, 3, 0, 30, 150, 0], [4, 3, 1, -30, 150, 0]], float)  # frame 4: two events of class 3
    write_label_csv(root / "metadata_dev" / TEST_SPLIT / "fold4_room1_mix001.csv", ref)
    run = make_run(tmp_path, root, "avseld-zzzz-s0", 0)
    shrunk = ref.copy()
    shrunk[:, 3] = ref[:, 3] / 2  # half of every azimuth: perfectly correlated, slope 0.5
    shrunk = np.vstack([shrunk, [[9, 5, 0, 70, 100, 0]]])  # a prediction with no reference: no pair
    write_label_csv(run / "predictions" / TEST_SPLIT / "fold4_room1_mix001.csv", shrunk)
    got = report.azimuth_agreement(run)
    assert got["n_pairs"] == 4  # frame 4 holds two class-3 events: ambiguous, left out
    assert got["corr"] == pytest.approx(1.0) and got["slope"] == pytest.approx(0.5)
    assert got["mean_abs_ref"] == pytest.approx(50.0) and got["mean_abs_pred"] == pytest.approx(25.0)
    assert got["mean_abs_err"] == pytest.approx(25.0)
    front = ref[:4].copy()
    front[:, 3] = 0.0  # every event straight ahead
    write_label_csv(run / "predictions" / TEST_SPLIT / "fold4_room1_mix001.csv", front)
    got = report.azimuth_agreement(run)
    assert got["slope"] == pytest.approx(0.0) and math.isnan(got["corr"])
    table = report.azimuth_table({"AV-SELD": [run]}, tmp_path)
    assert table.index.tolist() == [("AV-SELD", "data/runs/avseld-zzzz-s0")] and table["n_pairs"].iloc[0] == 4
