"""The run folder: one run id for `avseld train` and the study, records that survive a moved workdir,
and records of older runs (absolute paths) still read."""

import json
import shutil

import pytest
import torch

from avseld import report, study
from avseld.runs import RunFolder, is_finished

import engine_fixtures
from _study_fakes import TEST_SPLIT, make_dataset, make_run

torch.set_num_threads(1)


def _train_from_the_command_line(tmp_path, model: str):
    """One epoch of ``avseld train --model MODEL`` into a smoke study's runs folder; the study."""
    from avseld.cli import main

    from avseld.config import load_config
    from avseld.features import visual_feature_shape

    features = {k: v for k, v in study.get_system(model).overrides if k.startswith("features.")}  # AV-SELD+'s tokens
    fc = load_config("smoke", features).features
    _, data, cache = engine_fixtures.make_dataset(tmp_path / "fixture", overrides={"train.epochs": 1, **features},
                                                  visual_shape=visual_feature_shape(fc) if features else (9,))
    over = ["train.tensorboard=false", "train.epochs=1"]
    st = study.open_study("smoke", tmp_path / "work", seeds=[0], overrides=over)
    args = ["train", "--profile", "smoke", "--model", model, "--seed", "0", "--data", str(data),
            "--cache", str(cache), "--runs", str(st.runs_root)]
    assert main([*args, *(a for o in over for a in ("--set", o))]) == 0
    return st


def test_a_run_trained_from_the_command_line_is_the_studys_run(tmp_path):
    st = _train_from_the_command_line(tmp_path, "avseld")
    (expected,) = st.run_dirs("avseld")
    assert is_finished(expected)
    assert study.finished_runs(st, "avseld") == [expected]  # found, so a rerun of the study skips it
    log = RunFolder(expected).read_log()
    assert [r["epoch"] for r in log] == [1]


def test_a_finished_run_of_another_design_under_the_same_id_is_refused(tmp_path):
    from avseld.checkpoint import load_checkpoint
    from avseld.errors import ConfigError

    st = _train_from_the_command_line(tmp_path, "avseld_plus")
    (run_dir,) = st.run_dirs("avseld_plus")
    run = RunFolder(run_dir)
    name, args = run.read_model_args()
    ckpt = load_checkpoint(run.checkpoint("best"))
    assert name == ckpt["model_name"] == "avseld_plus"
    assert args == json.loads(json.dumps(ckpt["model_kwargs"])) and args["fusion_window"] == 1
    assert study.run_system(st, "avseld_plus") == [run_dir]  # the same design: reused, not retrained
    # the run as an older AV-SELD+ wrote it: the level-difference channel, and no model_args.json
    run.model_args_path.unlink()
    assert run.read_model_args() == (name, args)  # older runs: the checkpoint says what was built
    run.save_model_args(name, {**args, "level_difference": True})
    with pytest.raises(ConfigError, match=r"avseld_plus-.*level_difference=True \(now False\).*move or delete"):
        study.run_system(st, "avseld_plus")


def test_a_moved_workdir_is_rescored_from_its_records(tmp_path):
    old = tmp_path / "old"
    root = make_dataset(old / "data" / "synth_m")
    run = make_run(old, root, "avseld-mmmm-s0", 0)
    rec = RunFolder(run).read_metrics()
    assert rec["ref_dir"] == "data/synth_m/metadata_dev"
    assert rec["pred_dir"] == f"data/runs/avseld-mmmm-s0/predictions/{TEST_SPLIT}"
    before = report.score_run(run)
    shutil.move(old, tmp_path / "new")
    moved = tmp_path / "new" / "data" / "runs" / run.name
    ref, pred = RunFolder(moved).scored_folders()
    assert ref == tmp_path / "new" / "data" / "synth_m" / "metadata_dev"
    assert pred == moved / "predictions" / TEST_SPLIT
    assert report.score_run(moved)["F20"] == before["F20"]


def test_records_of_older_runs_with_absolute_paths_are_read(tmp_path):
    root = make_dataset(tmp_path / "data" / "synth_o")
    run = make_run(tmp_path, root, "avseld-oooo-s0", 0)
    path = RunFolder(run).metrics_path()
    rec = json.loads(path.read_text())
    del rec["workdir"]  # as the engine wrote it before the run folder had a module
    rec.update(ref_dir=str(root / "metadata_dev"), pred_dir=str(run / "predictions" / TEST_SPLIT))
    path.write_text(json.dumps(rec))
    shutil.copytree(tmp_path / "data", tmp_path / "elsewhere")  # the absolute paths still name the originals
    ref, pred = RunFolder(tmp_path / "elsewhere" / "runs" / run.name).scored_folders()
    assert (ref, pred) == (root / "metadata_dev", run / "predictions" / TEST_SPLIT)


def test_one_rule_prints_every_recorded_path(tmp_path):
    """runs.relative_to is what metrics.json, the study's messages and every table print: relative under
    the workdir, resolved and absolute outside it, POSIX either way; with no workdir, as given."""
    from avseld.runs import relative_to

    work = tmp_path / "work"
    (work / "data" / "runs" / "r-s0").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert relative_to(work / "data" / "runs" / "r-s0", work) == "data/runs/r-s0"
    assert relative_to(work / "data" / ".." / "data" / "runs", work) == "data/runs"
    assert relative_to(work / ".." / "elsewhere", work) == (tmp_path / "elsewhere").resolve().as_posix()
    assert relative_to("data/runs/r-s0", None) == "data/runs/r-s0"
    st = study.open_study("smoke", work, seeds=[0])
    assert st.relative(work / "data" / "runs" / "r-s0") == "data/runs/r-s0"
    assert st.relative(tmp_path / "elsewhere") == (tmp_path / "elsewhere").resolve().as_posix()
    fake_root = make_dataset(work / "data" / "synth", n_clips=2)
    run = make_run(work, fake_root, "avseld-aaaa-s0", 0)
    rows = report.azimuth_table({"AV-SELD": [run]}, work)
    assert rows.index.get_level_values("run").tolist() == ["data/runs/avseld-aaaa-s0"]
