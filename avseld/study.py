"""The study's steps as functions the notebooks call: locate data, cache features, train systems.

Follows the seed report (Sun & Gao, DCASE 2025 Task 3 technical report): the baseline replica, the
report's AV-SELD, our AV-SELD+ and the ablations of section 04 are each a *system* = a registered
model name plus dotted config overrides. A run's id is deterministic (:func:`avseld.runs.run_id`,
``<model>-<config-hash>-s<seed>``, the id ``avseld train`` gives the same run), so a finished run is
found and skipped on a rerun and notebooks 02, 03 and 04 share the runs where they coincide (the
``avseld`` run of 03 is 04's reference).
Notebooks talk to each other only through the files these functions write under the workdir.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avseld.cache import feature_cache_dir, feature_key
from avseld.config import Config, load_config
from avseld.errors import DataError
from avseld.runs import RunFolder, is_finished, metrics_name, prediction_name, relative_to, run_id  # noqa: F401 (run_id: the study's ids)
from avseld.systems import (  # noqa: F401  (re-exported: notebooks use avseld.study.SYSTEMS)
    FULLVIEW,
    LR_SWAP,
    ONSCREEN_FIX,
    PLUS,
    SYSTEMS,
    System,
    get_system,
)

log = logging.getLogger(__name__)


ABLATION_REFERENCE = "avseld"  # the report's ablations are compared with AV-SELD (each System names its reference)


def ablation_references(keys: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{variant: the system it is compared with}`` for the ablation variants ``keys``."""
    return {k: get_system(k).reference for k in keys if get_system(k).reference != k}


def ablation_keys(study: "Study") -> list[str]:
    """The references of the profile's ablations (each once, in first-use order), then the variants."""
    variants = list(study.cfg.report.ablations)
    refs = list(dict.fromkeys(ablation_references(variants).values()))
    return [*refs, *[k for k in variants if k not in refs]]


# --------------------------------------------------------------------------------------------
# The study's folders
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """A profile bound to a workdir: where everything of one study lives.

    Attributes:
        cfg: the resolved profile (with the notebook's device and seeds applied).
        workdir: root of every generated file.
        data_root: dataset root (DCASE 2025 layout).
        cache_root: feature caches, one sub-folder per feature-config hash.
        runs_root: one folder per training run.
        figures_dir: PNG figures and tables.
        seeds: the training seeds of every system (Table 1's reference adds ``report.reference_extra_seeds``).
    """

    cfg: Config
    workdir: Path
    data_root: Path
    cache_root: Path
    runs_root: Path
    figures_dir: Path
    seeds: tuple[int, ...] = field(default=())

    @property
    def ablation_seeds(self) -> tuple[int, ...]:
        """Seeds of the ablation study (04): ``report.ablation_seeds`` among the study's seeds, else all."""
        chosen = tuple(s for s in self.cfg.report.ablation_seeds if s in self.seeds)
        return chosen or self.seeds

    @property
    def reference(self) -> str:
        """Table 1's reference system (its first, the replica): every Table 1 difference is taken against it."""
        return self.cfg.report.systems[0] if self.cfg.report.systems else ""

    def seeds_of(self, key: str) -> tuple[int, ...]:
        """A system's training seeds: the study's, and for :attr:`reference` also ``report.reference_extra_seeds``."""
        if key == self.reference:
            return tuple(dict.fromkeys([*self.seeds, *self.cfg.report.reference_extra_seeds]))
        return self.seeds

    def run_dirs(self, key: str, seeds: tuple[int, ...] | list[int] | None = None) -> list[Path]:
        """The (deterministic) run folders of a system over ``seeds`` (default: :meth:`seeds_of` the system)."""
        scfg = get_system(key).config(self.cfg)
        return [self.runs_root / run_id(scfg, s) for s in (self.seeds_of(key) if seeds is None else seeds)]

    def describe(self) -> str:
        """One markdown line for a notebook's top: profile, folders, seeds (and the reference's extra ones)."""
        line = f"profile **{self.cfg.profile}**, workdir `{self.workdir}`, data `{self.data_root}`, seeds {list(self.seeds)}"
        ref_seeds = self.seeds_of(self.reference)
        if ref_seeds != self.seeds:
            line += f" ({self.reference}, Table 1's reference: {list(ref_seeds)})"
        return line

    def relative(self, path: Path) -> str:
        """``path`` relative to the workdir (:func:`avseld.runs.relative_to`)."""
        return relative_to(path, self.workdir)


def open_study(
    profile: str = "default",
    workdir: str | Path = ".",
    data_root: str | Path = "",
    seeds: list[int] | tuple[int, ...] = (),
    device: str = "auto",
    overrides: list[str] | dict[str, Any] | None = None,
) -> Study:
    """Resolve a profile and its folders under ``workdir`` (the first call of every notebook).

    Args:
        profile: profile name (``smoke``, ``default``, ``paper``) or a YAML file.
        workdir: where ``data/`` and ``figures/`` go.
        data_root: dataset root; empty means ``<workdir>/<data.root>`` (absolute roots are kept).
        seeds: training seeds; empty means the profile's ``report.seeds``.
        device: ``cpu`` or ``cuda`` for training and feature extraction; ``auto`` keeps the profile's.
        overrides: further dotted overrides.
    """
    cfg = load_config(profile, overrides)
    if device and device != "auto":  # "auto" keeps the profile's devices (and so its cache keys)
        cfg = cfg.with_overrides({"train.device": device, "features.device": device})
    workdir = Path(workdir).expanduser().resolve()

    def under(p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else workdir / p

    return Study(
        cfg=cfg,
        workdir=workdir,
        data_root=under(data_root) if str(data_root) else under(cfg.data.root),
        cache_root=under(cfg.data.cache_dir),
        runs_root=under(cfg.data.runs_dir),
        figures_dir=under(cfg.report.figures_dir),
        seeds=tuple(int(s) for s in (seeds or cfg.report.seeds)),
    )


def configure_runtime(n_threads: int = 0) -> None:
    """Headless-safe plotting and a bounded torch thread count (0 keeps torch's default)."""
    import os

    import matplotlib

    if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    if n_threads:
        import torch

        torch.set_num_threads(n_threads)


# --------------------------------------------------------------------------------------------
# Data and features
# --------------------------------------------------------------------------------------------


def _n_clips(root: Path) -> int:
    from avseld.dataset import discover_clips

    return len(discover_clips(root)) if root.is_dir() else 0


def ensure_dataset(study: Study) -> Path:
    """Locate the dataset, generating the embedded synthetic one when it is missing or incomplete.

    The ``paper`` profile (or any root outside the workdir's ``data/synth_*``) is never generated:
    a missing root raises :class:`DataError` saying where the real data must go.

    Returns:
        The dataset root.
    """
    root = study.data_root
    cfg = study.cfg
    synthetic = root.name.startswith("synth_")
    expected = cfg.synth.n_train_clips + cfg.synth.n_test_clips
    have = _n_clips(root)
    if not synthetic:
        if have == 0:
            raise DataError(
                f"{root}: no clips found; put the DCASE 2025 Stereo SELD data there "
                "(stereo_dev/, video_dev/, metadata_dev/) or set data.root / --data-root"
            )
        return root
    if have >= expected:
        log.info("dataset: %d clips found in %s", have, root)
        return root
    log.info("dataset: %d of %d clips in %s; generating the synthetic dataset", have, expected, root)
    from avseld.synth import generate_dataset

    generate_dataset(cfg.synth, root)
    have = _n_clips(root)
    if have < expected:
        raise DataError(f"{root}: synthetic generation produced {have} clips, expected {expected}")
    return root


def ensure_features(study: Study, keys: tuple[str, ...] | list[str] = ()) -> list[Path]:
    """Build (or find) the feature caches the given systems need; one per distinct feature config.

    With ``report.parallel_runs`` > 1 the clips are extracted by that many worker processes of
    ``report.threads_per_run`` torch threads each (as the training runs are).

    Args:
        keys: system keys; empty means Table 1's systems and the profile's ablations.

    Returns:
        The cache folders, one per distinct feature configuration, in first-use order.
    """
    from avseld.cache import ensure_feature_cache

    rc = study.cfg.report
    workers = dict(n_workers=rc.parallel_runs, threads_per_worker=rc.threads_per_run) if rc.parallel_runs > 1 else {}

    keys = list(keys) or list(dict.fromkeys([*study.cfg.report.systems, *ablation_keys(study)]))
    out: list[Path] = []
    seen: set[str] = set()
    for key in keys:
        scfg = get_system(key).config(study.cfg)
        h = feature_key(scfg)
        if h in seen:
            continue
        seen.add(h)
        out.append(ensure_feature_cache(scfg, study.data_root, study.cache_root, **workers))
    return out


def cache_dir_for(study: Study, key: str) -> Path:
    """The feature cache folder of a system (it may not exist yet)."""
    scfg = get_system(key).config(study.cfg)
    return feature_cache_dir(scfg, study.cache_root)


# --------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------


def _train_job(scfg: Config, model: str, seed: int, data_root: Path, cache_root: Path, runs_root: Path,
               rid: str, workdir: Path, n_threads: int) -> str:
    """Train and predict one (system, seed); runs in the study process or in a worker process."""
    from avseld import engine, inference
    from avseld.logging_setup import setup_logging

    setup_logging()
    if n_threads:
        scfg = scfg.with_overrides({"train.num_threads": n_threads})
    run_dir = Path(engine.train(scfg.with_overrides({"train.seed": int(seed)}), model, int(seed), data_root,
                                cache_root, runs_root, run_id=rid, workdir=workdir,
                                resume=True))  # continues an interrupted run; a new run starts from scratch
    if not is_finished(run_dir):
        inference.predict(run_dir, split="dev-test", data_root=data_root, workdir=workdir)
    return str(run_dir)


def expected_cost_rank(cfg: Config) -> int:
    """Rough rank of a run's cost, for ordering parallel runs longest first.

    Full-view tokens (15 per frame) cost most, then one visual map per frame, then audio only
    (median epochs of an earlier default study, batch 16: full-view runs 21.4-23.2 s, the other video
    variants 12.7-16.3 s, audio only 8.6 s).
    """
    from avseld.models import uses_video

    if not uses_video(cfg.model.name):
        return 0
    return 2 if cfg.features.visual_mode == "fullview" else 1


def run_systems(study: Study, keys: tuple[str, ...] | list[str],
                seeds: tuple[int, ...] | list[int] | None = None) -> dict[str, list[Path]]:
    """Train and predict every (system, seed) of ``keys``, skipping finished runs.

    With ``report.parallel_runs`` > 1 the runs go to that many worker processes, each with
    ``report.threads_per_run`` torch threads: on a small CPU two single-threaded runs side by side
    finish sooner than two runs one after the other on two threads each.

    Args:
        keys: system keys (see :data:`SYSTEMS`).
        seeds: defaults to each system's :meth:`Study.seeds_of`.

    Returns:
        ``{key: run folders, one per seed in seed order}``.
    """
    out: dict[str, list[Path]] = {}
    jobs = []
    for key in keys:
        system = get_system(key)
        scfg = system.config(study.cfg)
        out[key] = []
        for seed in (study.seeds_of(key) if seeds is None else tuple(seeds)):
            rid = run_id(scfg, seed)
            run_dir = study.runs_root / rid
            out[key].append(run_dir)
            if is_finished(run_dir):
                RunFolder(run_dir).check_model(scfg, system.model)
                log.info("%s: seed %d finished already (%s)", key, seed, rid)
            elif rid not in {j[6] for j in jobs}:
                jobs.append((scfg, system.model, int(seed), study.data_root, study.cache_root, study.runs_root, rid,
                             study.workdir))
    if not jobs:
        return out
    ensure_features(study, list(keys))  # every cache first, so that workers never race to build one
    n_par = max(1, min(study.cfg.report.parallel_runs, len(jobs)))
    if n_par > 1:  # longest first, so that the short runs fill the gaps at the end (stable: seed order kept)
        jobs.sort(key=lambda job: expected_cost_rank(job[0]), reverse=True)
    # the profile's thread layout whatever the number of pending runs: a run's numbers depend on its torch
    # thread count (measured: after 15 bfloat16 training steps of the replica, 88 of its 111 tensors differ
    # between 1 and 2 threads), so a run retrained or resumed alone must get the threads it has in the pool
    threads = study.cfg.report.threads_per_run if study.cfg.report.parallel_runs > 1 else 0
    if n_par == 1:  # in this process: the engine sets the run's thread count, so the caller's is put back after
        import torch

        caller_threads = torch.get_num_threads()
        try:
            for job in jobs:
                log.info("training %s", job[6])
                _train_job(*job, threads)
        finally:
            torch.set_num_threads(caller_threads)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    log.info("training %d runs, %d at a time (%d torch thread(s) each)", len(jobs), n_par, threads)
    with ProcessPoolExecutor(max_workers=n_par, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_train_job, *job, threads): job[6] for job in jobs}
        for fut in as_completed(futures):
            fut.result()  # re-raises a worker's error (its run folder keeps its last checkpoint)
            log.info("finished %s", futures[fut])
    return out


def run_system(study: Study, key: str, seeds: tuple[int, ...] | list[int] | None = None) -> list[Path]:
    """:func:`run_systems` for one system; returns its run folders, one per seed, in seed order."""
    return run_systems(study, [key], seeds)[key]


def finished_runs(study: Study, key: str, seeds: tuple[int, ...] | list[int] | None = None) -> list[Path]:
    """The finished run folders of a system (over ``seeds``, default :meth:`Study.seeds_of`); raises
    :class:`DataError` naming any missing run."""
    dirs = study.run_dirs(key, seeds)
    missing = [d for d in dirs if not is_finished(d)]
    if missing:
        raise DataError(
            f"system '{key}': run(s) not finished: {', '.join(study.relative(d) for d in missing)} "
            "(run notebooks 02-04 first)"
        )
    return dirs


# --------------------------------------------------------------------------------------------
# What the notebooks display
# --------------------------------------------------------------------------------------------


def by_label(runs: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """``{system key: runs}`` -> ``{system label: runs}`` (for tables and legends)."""
    return {get_system(k).label: v for k, v in runs.items()}


def table1_runs(study: Study) -> dict[str, list[Path]]:
    """``{label: finished run folders}`` of Table 1's systems, in display order."""
    return {get_system(k).label: finished_runs(study, k) for k in study.cfg.report.systems}


def ablation_runs(study: Study) -> dict[str, tuple[str, str, list[Path]]]:
    """``{key: (label, note, finished runs)}``: the references first (AV-SELD, AV-SELD+), then the
    profile's ablations, on the ablation seeds."""
    return {k: (get_system(k).label, get_system(k).note, finished_runs(study, k, study.ablation_seeds))
            for k in ablation_keys(study)}


def all_finished_runs(study: Study) -> dict[str, list[Path]]:
    """``{label: finished runs}`` of Table 1's systems, then of each ablation variant whose runs are all
    finished (04 may not have run yet); a variant that is also a Table 1 system is listed once."""
    runs = table1_runs(study)
    for key in study.cfg.report.ablations:
        label, dirs = get_system(key).label, study.run_dirs(key, study.ablation_seeds)
        if label not in runs and all(is_finished(d) for d in dirs):
            runs[label] = dirs
    return runs


def video_controls(study: Study, keys: tuple[str, ...] | list[str] = ()) -> dict[str, dict[str, list[Path]]]:
    """Score each video system's runs with the picture taken away (``avseld.inference.VIDEO_CONTROLS``:
    zeros, and the video of another clip), skipping controls already scored.

    Args:
        keys: systems (default: Table 1's systems that take video).

    Returns:
        ``{key: {prediction folder name: run folders}}`` (``dev-test.video-<control>``,
        :func:`avseld.runs.prediction_name`).
    """
    from avseld import inference
    from avseld.models import uses_video

    keys = list(keys) or [k for k in study.cfg.report.systems if uses_video(get_system(k).model)]
    out: dict[str, dict[str, list[Path]]] = {}
    for key in keys:
        dirs = finished_runs(study, key)
        out[key] = {}
        for control in inference.VIDEO_CONTROLS:
            out[key][_control(study, dirs, video_control=control)] = dirs
    return out


def _control(study: Study, dirs: list[Path], **control: str) -> str:
    """Score the ``control`` (``video_control=`` / ``onscreen_decision=``) of every run in ``dirs`` that
    lacks it; return its prediction folder name."""
    from avseld import inference

    name = prediction_name("dev-test", **control)
    for d in dirs:
        if not (d / metrics_name(name)).is_file():
            inference.predict(d, split="dev-test", data_root=study.data_root, cache_root=study.cache_root,
                              workdir=study.workdir, **control)
    return name


def decoding_controls(study: Study) -> dict[str, dict[str, list[Path]]]:
    """Re-decode the runs of Table 1's systems that threshold the on-screen probability with the
    baseline's truncation instead (same outputs, another rule), skipping what is scored already.

    Returns:
        ``{key: {"dev-test.onscreen-truncate": run folders}}``, the format of :func:`video_controls`.
    """
    out: dict[str, dict[str, list[Path]]] = {}
    for key in study.cfg.report.systems:
        if get_system(key).config(study.cfg).eval.onscreen_decision != "threshold":
            continue
        dirs = finished_runs(study, key)
        out[key] = {_control(study, dirs, onscreen_decision="truncate"): dirs}
    return out


def controls(study: Study) -> dict[str, dict[str, list[Path]]]:
    """:func:`video_controls` and :func:`decoding_controls` of Table 1's systems, merged per system."""
    out = video_controls(study)
    for key, by_control in decoding_controls(study).items():
        out.setdefault(key, {}).update(by_control)
    return out


def table1_comparisons(study: Study, controls: dict[str, dict[str, list[Path]]] | None = None) -> list[tuple]:
    """The comparisons 05 reports: each Table 1 system against the baseline replica; each system listed
    after the report's AV-SELD (:data:`ABLATION_REFERENCE`; ours) against AV-SELD; then each video control
    against its own system (``(report.Side, report.Side)`` pairs)."""
    from avseld.report import Side

    systems = study.cfg.report.systems

    def side(key: str) -> Side:
        return Side(get_system(key).label, tuple(finished_runs(study, key)))

    sides = {k: side(k) for k in systems}  # each system's runs looked up once
    pairs = [(sides[k], sides[study.reference]) for k in systems[1:]]
    if ABLATION_REFERENCE in systems[1:]:
        pairs += [(sides[k], sides[ABLATION_REFERENCE]) for k in systems[systems.index(ABLATION_REFERENCE) + 1:]]
    names = {prediction_name("dev-test", video_control="zeros"): "video zeroed",
             prediction_name("dev-test", video_control="shuffled"): "video of another clip",
             prediction_name("dev-test", onscreen_decision="truncate"): "on-screen by truncation"}
    for key, by_control in (controls or {}).items():
        label = get_system(key).label
        own = sides[key] if key in sides else side(key)
        for split, dirs in by_control.items():
            pairs.append((Side(f"{label}, {names.get(split, split)}", tuple(dirs), split), own))
    return pairs


def ablation_comparisons(study: Study) -> list[tuple]:
    """Each ablation variant against its reference on the ablation seeds (``(Side, Side)`` pairs)."""
    from avseld.report import Side

    def side(key: str) -> Side:
        return Side(get_system(key).label, tuple(finished_runs(study, key, study.ablation_seeds)))

    return [(side(k), side(ref)) for k, ref in ablation_references(study.cfg.report.ablations).items()]


def test_clips(study: Study) -> list:
    """Clip records of the dev-test split(s) (``avseld.dataset.ClipRecord``)."""
    from avseld.dataset import discover_clips

    clips = discover_clips(study.data_root, list(study.cfg.data.test_splits))
    if not clips:
        raise DataError(f"{study.data_root}: no {'/'.join(study.cfg.data.test_splits)} clips")
    return clips


def pick_clips(study: Study, n: int = 1) -> list:
    """The ``n`` dev-test clips with the most on-screen label rows (ties: most rows, then name)."""
    from avseld.dataset import read_label_csv

    def score(c) -> tuple:
        rows = read_label_csv(c.csv) if c.csv is not None else None
        return (0, 0, c.name) if rows is None or len(rows) == 0 else (int(rows[:, 5].sum()), len(rows), c.name)

    return sorted(test_clips(study), key=score, reverse=True)[:n]


def load_example_clip(study: Study, clip: str = "") -> dict[str, Any]:
    """Log-mel, sampled frames and labels of one clip (default: the busiest on-screen test clip), made
    with the profile's feature config (``features.sample_rate``, ``n_fft``, ..., ``video_fps``), so the
    log-mel equals the first two channels of the clip's cached audio features.

    Returns:
        ``{"logmel": (2, T, F), "frames": (50, H, W, 3) or None, "labels": (R, 6), "title": str}``,
        the keyword arguments of :func:`avseld.viz.plot_clip`.
    """
    from avseld.dataset import load_audio, read_label_csv, read_video_frames
    from avseld.features import extract_logmel
    from avseld.layout import N_LABEL_FRAMES

    rec = next((c for c in test_clips(study) if c.name == clip), None) if clip else pick_clips(study)[0]
    if rec is None:
        raise DataError(f"{study.data_root}: no test clip named '{clip}'")
    fc = study.cfg.features
    audio = load_audio(rec.wav, sample_rate=fc.sample_rate)
    logmel = np.asarray(extract_logmel(audio, fc.sample_rate, fc.n_fft, fc.win_length, fc.hop_length, fc.n_mels))
    frames = read_video_frames(rec.mp4, fps=fc.video_fps, n_frames=N_LABEL_FRAMES) if rec.mp4 is not None else None
    labels = read_label_csv(rec.csv) if rec.csv is not None else None
    return {"logmel": logmel, "frames": frames, "labels": labels, "title": f"{rec.split}/{rec.name}"}


def cache_summary(cache_dirs: list[Path]) -> Any:
    """One row per cached split: feature hash, visual mode, clips, audio and video array shapes."""
    import pandas as pd
    import yaml

    from avseld.cache import list_cached_splits, load_split

    rows = []
    for d in cache_dirs:
        fc = yaml.safe_load((Path(d) / "feature_config.yaml").read_text()) or {}
        fc = fc.get("features", fc)
        for split in list_cached_splits(d):
            s = load_split(d, split)
            rows.append({"cache": Path(d).name, "visual_mode": fc.get("visual_mode"), "backbone": fc.get("backbone"),
                         "split": split, "clips": len(s.names), "audio": tuple(s.audio.shape),
                         "video": tuple(s.video.shape)})
    return pd.DataFrame(rows)


def attention_explorer(study: Study, keys: tuple[str, ...] | list[str] = (), n_clips: int = 0):
    """An :class:`avseld.viz.AttentionExplorer` over the first seed of each system and a few test clips.

    Models are rebuilt from their best checkpoints; features come from each run's feature cache,
    frames from the clips' videos, reference events from the clips' label CSVs and predicted events from
    each run's saved dev-test prediction CSVs.
    """
    from avseld.cache import list_cached_splits, load_split
    from avseld.dataset import read_label_csv, read_video_frames
    from avseld.inference import load_model
    from avseld.report import load_clip_pair
    from avseld.viz import AttentionExplorer, ClipInputs

    keys = list(keys) or list(study.cfg.report.systems)
    clips = pick_clips(study, n_clips or study.cfg.report.explorer_clips)
    models: dict[str, Any] = {}
    videos: dict[str, dict[str, np.ndarray | None]] = {c.name: {} for c in clips}
    audio: dict[str, dict[str, np.ndarray]] = {c.name: {} for c in clips}
    predicted: dict[str, dict[str, np.ndarray]] = {c.name: {} for c in clips}
    for key in keys:
        run_dir = finished_runs(study, key)[0]
        name = f"{get_system(key).label} ({run_dir.name})"
        models[name] = load_model(run_dir)
        for c in clips:
            predicted[c.name][name] = load_clip_pair(run_dir, c.name)[2]
        cache = cache_dir_for(study, key)
        for split in list_cached_splits(cache):
            s = load_split(cache, split)
            index = {n: i for i, n in enumerate(s.names)}
            for c in clips:
                if c.name in index:
                    audio[c.name][name] = np.asarray(s.audio[index[c.name]])
                    videos[c.name][name] = np.asarray(s.video[index[c.name]]) if getattr(models[name], "uses_video", True) else None
    inputs = {c.name: ClipInputs(next(iter(audio[c.name].values())), videos[c.name],
                                 read_video_frames(c.mp4) if c.mp4 else None, audio[c.name],
                                 read_label_csv(c.csv) if c.csv else None, predicted[c.name])
              for c in clips if audio[c.name]}
    return AttentionExplorer(models, inputs)
