"""The study's steps: deterministic run ids and folders, ablation seeds, the order runs go to the workers."""

from __future__ import annotations

import math

import pytest

from avseld import report, study
from avseld.errors import DataError


def test_run_ids_are_deterministic_and_distinct(tmp_path):
    st = study.open_study("smoke", tmp_path, seeds=[0, 1], device="cpu")
    a = st.run_dirs("avseld")
    assert a == study.open_study("smoke", tmp_path, seeds=[0, 1], device="cuda").run_dirs("avseld")  # device-free
    assert study.open_study("smoke", tmp_path).cfg.features.device == "cpu"  # auto keeps the profile's
    assert [d.name[-3:] for d in a] == ["-s0", "-s1"]
    names = {k: st.run_dirs(k)[0].name for k in study.SYSTEMS}
    assert len(set(names.values())) == len(names)  # every system its own run
    assert names["onscreen_fix"].startswith("avseld-") and names["no_atem"].startswith("avseld_no_atem-")
    assert st.data_root == tmp_path.resolve() / "data" / "synth_smoke"
    assert st.runs_root == tmp_path.resolve() / "data" / "runs"
    with pytest.raises(DataError, match="not finished: data/runs/avseld-"):
        study.finished_runs(st, "avseld")
    assert math.isnan(report.to_report_units({"F20": None})["F20"])


def test_ablation_seeds_subset_of_study_seeds(tmp_path):
    st = study.open_study("default", tmp_path, device="cpu")
    assert st.seeds == (0, 1, 2) and st.ablation_seeds == (0, 1)  # the default profile's hour budget
    both = study.open_study("default", tmp_path, overrides=["report.ablation_seeds=[]"])
    assert both.ablation_seeds == (0, 1, 2)  # empty: the study's seeds
    only1 = study.open_study("default", tmp_path, seeds=[1])
    assert only1.ablation_seeds == (1,)  # a seed outside the study is never trained for the ablations
    with pytest.raises(DataError, match=r"not finished: data/runs/avseld_plus-\w+-s0, data/runs/avseld_plus-\w+-s1 \(run"):
        study.ablation_runs(st)  # looks for seeds 0 and 1 only


def test_the_reference_trains_extra_seeds_and_tables_find_them(tmp_path, monkeypatch):
    """``report.reference_extra_seeds`` adds seeds to Table 1's first system only: 02 trains them (in the
    worker that would idle while the third seed trains), and 05 finds and pools them."""
    st = study.open_study("default", tmp_path, device="cpu")
    assert st.cfg.report.systems[0] == "baseline_av" and st.cfg.report.reference_extra_seeds == (3,)
    assert st.seeds_of("baseline_av") == (0, 1, 2, 3) and st.seeds_of("avseld") == st.seeds == (0, 1, 2)
    assert [d.name[-3:] for d in st.run_dirs("baseline_av")] == ["-s0", "-s1", "-s2", "-s3"]
    assert st.describe().endswith("seeds [0, 1, 2] (baseline_av, Table 1's reference: [0, 1, 2, 3])")
    assert len(st.run_dirs("avseld_plus")) == 3 and len(st.run_dirs("baseline_av", [0])) == 1  # explicit seeds win
    assert study.open_study("default", tmp_path, seeds=[0, 3]).seeds_of("baseline_av") == (0, 3)  # no duplicate
    assert study.open_study("default", tmp_path, overrides=["report.reference_extra_seeds=[]"]).seeds_of(
        "baseline_av") == (0, 1, 2)
    trained = []
    monkeypatch.setattr(study, "_train_job", lambda *job: trained.append(job[6]))
    monkeypatch.setattr(study, "ensure_features", lambda *a, **k: [])
    one = study.open_study("default", tmp_path, device="cpu", overrides=["report.parallel_runs=1"])
    runs = study.run_systems(one, ["baseline_av", "avseld"])
    assert [d.name for d in runs["baseline_av"]] == trained[:4] and len(runs["avseld"]) == 3 == len(trained) - 4
    with pytest.raises(DataError, match=r"baseline_av-\w+-s3 \(run"):
        study.finished_runs(st, "baseline_av")  # Table 1 waits for the fourth seed too


def test_parallel_runs_start_longest_first(tmp_path, monkeypatch):
    """04's runs go to the two workers full-view first and audio-only last (no idle core at the end)."""
    st = study.open_study("default", tmp_path, device="cpu")
    cfgs = {k: study.get_system(k).config(st.cfg) for k in study.SYSTEMS}
    ranks = {k: study.expected_cost_rank(c) for k, c in cfgs.items()}
    assert ranks["fullview"] == ranks["avseld_plus"] == ranks["plus_fused_all"] > ranks["avseld"] \
        == ranks["plus_centre_map"] > ranks["audio_only"]
    assert study.feature_key(cfgs["plus_centre_map"]) == study.feature_key(cfgs["avseld"])  # the replica's cache
    submitted = []

    class Pool:  # records the submission order instead of training
        def __init__(self, *a, **k): pass
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def submit(self, fn, *job):
            submitted.append(job[0].model.name)
            from concurrent.futures import Future
            f = Future(); f.set_result(None); return f

    import concurrent.futures
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(study, "ensure_features", lambda *a, **k: [])
    study.run_systems(st, ["audio_only", "no_atem", "fullview"], seeds=[0])
    assert submitted == ["avseld", "avseld_no_atem", "avseld_audio"]  # fullview (an avseld config) first


def test_a_lone_run_gets_the_threads_it_has_in_the_pool(tmp_path, monkeypatch):
    """A run retrained or resumed alone trains with ``report.threads_per_run`` threads, as beside another run,
    so that its numbers do not depend on how many runs were pending (thread count changes the bits)."""
    st = study.open_study("default", tmp_path, device="cpu")
    assert st.cfg.report.parallel_runs == 2 and st.cfg.report.threads_per_run == 1
    import torch

    got = []

    def train_job(*job):  # what engine.train does with train.num_threads
        got.append((job[6], job[-1]))
        torch.set_num_threads(job[-1] or torch.get_num_threads())

    monkeypatch.setattr(study, "_train_job", train_job)
    monkeypatch.setattr(study, "ensure_features", lambda *a, **k: [])
    before = torch.get_num_threads()
    study.run_systems(st, ["baseline_av"], seeds=[2])  # one pending run: trained in this process
    assert got == [(st.run_dirs("baseline_av", [2])[0].name, 1)]
    assert torch.get_num_threads() == before  # the notebook's own thread count is put back
    got.clear()
    one = study.open_study("default", tmp_path, device="cpu", overrides=["report.parallel_runs=1"])
    study.run_systems(one, ["baseline_av"], seeds=[2])
    assert got[0][1] == 0  # one run at a time: torch's default thread count
