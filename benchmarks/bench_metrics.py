"""Benchmark: ``avseld.metrics`` against the official DCASE 2025 metric, side by side in one run.

Scores a 300-clip folder of synthetic references and noisy predictions with both implementations
(end to end: reading the CSVs and scoring, macro, one threshold setting as the official class does
per call), checks that they agree, and times a 60-clip jackknife.

The official code is never part of this repository: it is read from ``$AVSELD_OFFICIAL_DIR``
(a folder with its ``metrics.py``, ``utils.py``, ``parameters.py``), else exported from the fetched
mirror ``/work/.mirror/partha2409+DCASE2025_seld_baseline/repo`` (``git show``), else
``/tmp/official``; its unused heavy imports (torch, cv2, librosa, PIL, tensorboard) are stubbed.
When none is found, the comparison is skipped with a message.

Run: ``.venv/bin/python benchmarks/bench_metrics.py``
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np

from _common import write_result  # noqa: E402  (adds the repo root to sys.path)

from avseld.dataset import write_label_csv  # noqa: E402
from avseld.metrics import clip_statistics, evaluate_folders, summarize  # noqa: E402

MIRROR = Path("/work/.mirror/partha2409+DCASE2025_seld_baseline/repo")
OFFICIAL_FILES = ("metrics.py", "utils.py", "parameters.py")


def make_scene(rng: np.random.Generator, n_frames: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """One clip: 0-5 events of 0.5-5 s (about 1.5 active per frame, like STARSS23; same-class
    overlaps possible), predictions = noisy detections (80 %) plus spurious ones."""
    ref, pred = [], []
    for e in range(int(rng.integers(0, 6))):
        c = int(rng.integers(0, 13))
        start = int(rng.integers(0, n_frames - 5))
        stop = min(n_frames, start + int(rng.integers(5, 50)))
        az0, daz = rng.uniform(-90, 90), rng.uniform(-3, 3)
        dist, on = rng.uniform(50, 500), int(rng.integers(0, 2))
        for f in range(start, stop):
            az = float(np.clip(az0 + daz * (f - start), -90, 90))
            ref.append((f, c, e, round(az), round(dist), on))
            if rng.random() < 0.8:
                pred.append((f, c, e % 3, round(np.clip(az + rng.normal(0, 12), -180, 180)),
                             round(dist * rng.uniform(0.5, 1.8)), on if rng.random() < 0.8 else 1 - on))
        for _ in range(int(rng.integers(0, 10))):
            pred.append((int(rng.integers(0, n_frames)), int(rng.integers(0, 13)), int(rng.integers(0, 3)),
                         int(rng.integers(-180, 181)), int(rng.integers(20, 800)), int(rng.integers(0, 2))))
    as_array = lambda rows: np.asarray(rows, dtype=np.float64).reshape(-1, 6)  # noqa: E731
    return as_array(ref), as_array(pred)


def write_folder(root: Path, n_clips: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    ref_dir, pred_dir = root / "ref" / "dev-test-bench", root / "pred"
    ref_dir.mkdir(parents=True)
    pred_dir.mkdir(parents=True)
    for i in range(n_clips):
        ref, pred = make_scene(rng)
        write_label_csv(ref_dir / f"fold4_room1_mix{i:03d}.csv", ref)
        write_label_csv(pred_dir / f"fold4_room1_mix{i:03d}.csv", pred)
    return root / "ref", pred_dir


def load_official(tmp: Path):
    """The official ``metrics`` and ``parameters`` modules, or None with the reason."""
    src = os.environ.get("AVSELD_OFFICIAL_DIR")
    if src and all((Path(src) / f).exists() for f in OFFICIAL_FILES):
        folder = Path(src)
    elif MIRROR.exists():
        folder = tmp / "official"
        folder.mkdir()
        for f in OFFICIAL_FILES:
            out = subprocess.run(["git", "-C", str(MIRROR), "show", f"HEAD:{f}"], capture_output=True, text=True)
            if out.returncode != 0:
                return None, f"cannot export {f} from {MIRROR}"
            (folder / f).write_text(out.stdout)
    elif all((Path("/tmp/official") / f).exists() for f in OFFICIAL_FILES):
        folder = Path("/tmp/official")
    else:
        return None, "official DCASE2025_seld_baseline not found (set AVSELD_OFFICIAL_DIR)"
    import scipy.optimize  # noqa: F401  (before the stubs: scipy looks for a real torch)
    import scipy.stats  # noqa: F401

    stubbed = {}
    for name in ("torch", "torch.utils", "torch.utils.tensorboard", "cv2", "librosa", "librosa.feature",
                 "PIL", "PIL.Image"):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.SummaryWriter = mod.Image = None
            stubbed[name] = sys.modules[name] = mod
    sys.path.insert(0, str(folder))
    try:
        metrics, parameters = importlib.import_module("metrics"), importlib.import_module("parameters")
    finally:
        sys.path.remove(str(folder))
        for name in stubbed:
            del sys.modules[name]
    return (metrics, parameters), str(folder)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    warnings.simplefilter("ignore")
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ref_dir, pred_dir = write_folder(tmp / "c300", 300, seed=0)
        t_ours, ours = best_of(lambda: evaluate_folders(ref_dir, pred_dir), 5)
        n_rows = sum(len(p.read_text().splitlines()) - 1 for p in ref_dir.rglob("*.csv")) / 300
        notes.append(f"300 synthetic clips, {n_rows:.0f} reference rows per clip on average.")
        rows.append({"case": "300 clips, macro, end to end", "implementation": "avseld", "seconds": t_ours})
        official, where = load_official(tmp)
        if official is None:
            notes.append(f"official comparison skipped: {where}")
            print(notes[-1])
        else:
            metrics, parameters = official
            params = dict(parameters.params, average="macro", lad_req_onscreen=False, modality="audio_visual")

            def run_official():
                obj = metrics.ComputeSELDResults(params, ref_files_folder=str(ref_dir))
                return obj.get_SELD_Results(str(pred_dir))

            t_off, off = best_of(run_official, 2)
            diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in
                       zip((ours["F20"], ours["DOAE"], ours["DE"], ours["RDE"], ours["OSA"]), off[:5]))
            rows.append({"case": "300 clips, macro, end to end", "implementation": "official", "seconds": t_off})
            rows.append({"case": "speed-up (official / avseld)", "implementation": "ratio", "seconds": t_off / t_ours})
            notes.append(f"official code {'exported from ' + str(MIRROR) if where.startswith(tempfile.gettempdir()) else 'from ' + where}; max relative difference of F20, DOAE, DE, RDE, OSA: {diff:.2e}; "
                         f"speed-up {t_off / t_ours:.1f}x (target >= 10x)")
            print(notes[-1])
            # The official jackknife (10 clips: it re-scores n + 1 times), to show what it does here.
            ref10, pred10 = write_folder(tmp / "c10", 10, seed=2)
            for average in ("macro", "micro"):
                obj = metrics.ComputeSELDResults(dict(params, average=average), ref_files_folder=str(ref10))
                t0 = time.perf_counter()
                try:
                    obj.get_SELD_Results(str(pred10), is_jackknife=True)
                    outcome = "ok"
                except Exception as e:  # noqa: BLE001  (reporting what the official code raises)
                    outcome = f"{type(e).__name__}: {str(e)[:90]}"
                rows.append({"case": f"10 clips, {average} jackknife", "implementation": "official",
                             "seconds": time.perf_counter() - t0, "outcome": outcome})
                print(f"official {average} jackknife, numpy {np.__version__}: {outcome}")
        # 60-clip jackknife: parse once, then time the scoring (statistics + jackknife) alone
        rng = np.random.default_rng(1)
        pairs = [make_scene(rng) for _ in range(60)]
        t_jk, res = best_of(lambda: summarize(clip_statistics(pairs), "macro", jackknife_ci=True), 5)
        t_jk_micro, _ = best_of(lambda: summarize(clip_statistics(pairs), "micro", jackknife_ci=True), 5)
        rows.append({"case": "60 clips, macro jackknife, scoring", "implementation": "avseld", "seconds": t_jk})
        rows.append({"case": "60 clips, micro jackknife, scoring", "implementation": "avseld", "seconds": t_jk_micro})
        notes.append(f"60-clip jackknife scoring {t_jk:.3f} s macro, {t_jk_micro:.3f} s micro (target < 0.5 s); "
                     f"F20 {res['F20']:.3f} CI [{res['ci']['F20'][0]:.3f}, {res['ci']['F20'][1]:.3f}]")
        print(notes[-1])
    path = write_result("metrics", rows, " ".join(notes) + " Times: best of 5 runs (official: best of 2), same process.")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
