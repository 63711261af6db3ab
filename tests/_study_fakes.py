"""Fake dataset roots and run folders for the study-layer tests (made in code, tiny)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avseld.config import Config
from avseld.dataset import write_label_csv
from avseld.metrics import evaluate_folders
from avseld.runs import RunFolder

TEST_SPLIT = "dev-test-synth"


def reference_rows(seed: int) -> np.ndarray:
    """A clip's reference rows: 2-3 events over a few frames, some on-screen."""
    rng = np.random.default_rng(seed)
    rows = []
    for src in range(rng.integers(2, 4)):
        cls = int(rng.integers(0, 13))
        start = int(rng.integers(0, 30))
        az = float(rng.uniform(-80, 80))
        dist = float(rng.uniform(80, 400))
        on = int(rng.integers(0, 2))
        for fr in range(start, start + 12):
            rows.append([fr, cls, src, round(az + 0.5 * (fr - start)), round(dist), on])
    rows = np.asarray(rows, dtype=float)
    return rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]


def make_dataset(root: Path, n_clips: int = 4, split: str = TEST_SPLIT) -> Path:
    """A dataset root with label CSVs and empty wav placeholders (enough for label statistics)."""
    for i in range(n_clips):
        name = f"fold4_room1_mix{i + 1:03d}"
        write_label_csv(root / "metadata_dev" / split / f"{name}.csv", reference_rows(i))
        wav = root / "stereo_dev" / split / f"{name}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"")
    return root


def perturb(rows: np.ndarray, rng: np.random.Generator, az_noise: float, drop: float) -> np.ndarray:
    """Predictions: references with azimuth noise, dropped rows and flipped on-screen flags."""
    keep = rng.uniform(size=len(rows)) >= drop
    out = rows[keep].copy()
    out[:, 2] = 0
    out[:, 3] = np.clip(np.round(out[:, 3] + rng.normal(0, az_noise, len(out))), -180, 180)
    flip = rng.uniform(size=len(out)) < 0.2
    out[flip, 5] = 1 - out[flip, 5]
    return out


def make_run(workdir: Path, data_root: Path, run_id: str, seed: int, az_noise: float = 10.0, drop: float = 0.2,
             n_epochs: int = 3) -> Path:
    """A finished run folder, written through :class:`avseld.runs.RunFolder` as the engine writes it:
    config, log (epochs from 1), predictions, metrics record."""
    from avseld.dataset import read_label_csv

    run = RunFolder(workdir / "data" / "runs" / run_id)
    ref_dir = data_root / "metadata_dev" / TEST_SPLIT
    rng = np.random.default_rng([seed, sum(run_id.encode())])
    preds = {ref.stem: perturb(read_label_csv(ref), rng, az_noise, drop) for ref in sorted(ref_dir.glob("*.csv"))}
    run.save_config(Config())
    pred_dir = run.write_predictions(TEST_SPLIT, preds)
    m = evaluate_folders(ref_dir, pred_dir)
    record = {k: m[k] for k in ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")}
    # as the engine records it: the split-folder root of the references
    record.update(classwise=m["classwise"], **run.folder_fields(TEST_SPLIT, data_root / "metadata_dev", workdir),
                  provenance={"seed": seed, "train_wall_s": 1.0})
    run.write_metrics("dev-test", record)
    for e in range(1, n_epochs + 1):
        run.append_log({"epoch": e, "train_loss": 1.0 / e, "val": {"F20": 0.1 * (e - 1), "DOAE": 31 - e,
                        "RDE": 0.5, "OSA": 0.7}})
    return run.path
