"""Run records -> Table 1, per-class and ablation tables (seed report, Table 1); dataset statistics
are :mod:`avseld.stats`.

Every number is recomputed from the prediction CSVs a run saved, with
:func:`avseld.metrics.evaluate_folders` (the same call as ``avseld evaluate``), so a table cell
always equals what the command line computes from those files. Units are the report's: F, RDE and
OSA in percent, DOAE in degrees.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from avseld.atomic import write_text_atomic
from avseld.errors import DataError
from avseld.layout import CLASS_NAMES
from avseld.runs import RunFolder, relative_to

log = logging.getLogger(__name__)

METRIC_KEYS = ("F20_on", "DOAE", "RDE", "OSA", "F20")  # Table 1 order, F20 last (not in the report)
PERCENT_KEYS = {"F20_on", "RDE", "OSA", "F20"}
TABLE1_COLUMNS = ("system", "source", "F20_on", "DOAE", "RDE", "OSA", "F20", "n_seeds", "runs")

# The seed report's Table 1 (STARSS23 dev-test), in its units; F20 is not reported.
PUBLISHED_TABLE1: tuple[dict[str, Any], ...] = (
    {"system": "Official Baseline", "F20_on": 20.0, "DOAE": 23.8, "RDE": 40.0, "OSA": 80.0},
    {"system": "Replicated Baseline", "F20_on": 18.8, "DOAE": 25.7, "RDE": 39.0, "OSA": 79.9},
    {"system": "AV-SELD", "F20_on": 23.1, "DOAE": 20.1, "RDE": 34.0, "OSA": 79.1},
)

Evaluator = Callable[..., dict]


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


def read_run_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` record of a run (raises :class:`DataError` naming a missing file)."""
    return RunFolder(run_dir).read_metrics()


def run_folders(run_dir: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """The (reference, prediction) folders a run was scored on, from its metrics record
    (:meth:`avseld.runs.RunFolder.scored_folders`; reference files without a prediction are skipped).

    Args:
        run_dir: a finished run folder.
        split: a prediction split folder name to use instead of the recorded one.
    """
    return RunFolder(run_dir).scored_folders(split)


def _reference_files(ref_dir: Path) -> dict[str, Path]:
    """``{clip name: reference CSV}`` of a flat or split-folder reference folder."""
    return {p.stem: p for p in sorted(ref_dir.rglob("*.csv")) if not p.name.startswith(".")}


def _label_pairs(run_dir: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(reference rows, predicted rows)`` of every prediction CSV of a run that has a reference."""
    from avseld.dataset import read_label_csv

    ref_dir, pred_dir = run_folders(run_dir)
    refs = _reference_files(ref_dir)
    for pp in sorted(pred_dir.glob("*.csv")):
        if pp.stem in refs:
            yield read_label_csv(refs[pp.stem]), read_label_csv(pp, reference=False)


def _eval_kwargs(run_dir: Path) -> dict[str, Any]:
    from avseld.metrics import metric_kwargs

    run = RunFolder(run_dir)
    return metric_kwargs(run.read_config().eval) if run.config_path.is_file() else {}


def score_run(run_dir: str | Path, split: str | None = None, evaluate: Evaluator | None = None) -> dict:
    """Re-score a run from its saved prediction CSVs (what ``avseld evaluate`` computes).

    Args:
        run_dir: a finished run folder.
        split: prediction split (default: the one its metrics record names).
        evaluate: the folder evaluator (default :func:`avseld.metrics.evaluate_folders`).

    Returns:
        The metric dict (fractions; DOAE in degrees), see :mod:`avseld.metrics`.
    """
    if evaluate is None:
        from avseld.metrics import evaluate_folders as evaluate
    run_dir = Path(run_dir)
    ref, pred = run_folders(run_dir, split)
    return evaluate(ref, pred, **_eval_kwargs(run_dir))


def to_report_units(metrics: dict) -> dict[str, float]:
    """Fractions to percent for F, RDE and OSA; DOAE stays in degrees. Missing keys become NaN."""
    out = {}
    for k in METRIC_KEYS:
        v = metrics.get(k, math.nan)
        v = math.nan if v is None else float(v)
        out[k] = 100.0 * v if k in PERCENT_KEYS else v
    return out


# --------------------------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------------------------


def system_row(label: str, run_dirs: list[Path], workdir: Path | None = None,
               evaluate: Evaluator | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Mean (and std) over seeds of one system, scored from its runs' predictions.

    Returns:
        ``(row, std)``: ``row`` has the Table 1 columns (``source`` = ``this study``), ``std``
        the per-metric sample standard deviation over seeds (ddof=1, as issue 15 quotes seed spreads;
        NaN for one seed).
    """
    if not run_dirs:
        raise DataError(f"system '{label}': no runs to score")
    scores = pd.DataFrame([to_report_units(score_run(d, evaluate=evaluate)) for d in run_dirs])
    row: dict[str, Any] = {"system": label, "source": "this study"}
    row.update({k: float(scores[k].mean()) for k in METRIC_KEYS})
    row["n_seeds"] = len(run_dirs)
    row["runs"] = ";".join(relative_to(d, workdir) for d in run_dirs)
    std = {k: float(scores[k].std(ddof=1)) for k in METRIC_KEYS}
    return row, std


def build_table1(systems: dict[str, list[Path]], workdir: Path | None = None,
                 evaluate: Evaluator | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1: the report's three published rows, then this study's systems.

    Args:
        systems: ``{label: run folders}`` in display order (e.g. baseline replica, AV-SELD, AV-SELD+).
        workdir: run folders are listed relative to it.
        evaluate: folder evaluator (default :func:`avseld.metrics.evaluate_folders`).

    Returns:
        ``(table, std)``: ``table`` with columns :data:`TABLE1_COLUMNS` (unrounded), ``std`` with the
        per-metric standard deviation over seeds (NaN for the published rows).
    """
    rows, stds = [], []
    for p in PUBLISHED_TABLE1:
        rows.append({**p, "source": "published", "F20": math.nan, "n_seeds": math.nan, "runs": ""})
        stds.append({k: math.nan for k in METRIC_KEYS})
    for label, dirs in systems.items():
        r, s = system_row(label, list(dirs), workdir, evaluate)
        rows.append(r)
        stds.append(s)
    table = pd.DataFrame(rows, columns=list(TABLE1_COLUMNS))
    table["n_seeds"] = table["n_seeds"].astype("Int64")
    std = pd.DataFrame(stds, columns=list(METRIC_KEYS))
    std.insert(0, "system", table["system"])
    return table, std


def _fmt(mean: float, std: float, n: Any) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if n is pd.NA or n is None or (isinstance(n, float) and math.isnan(n)) or int(n) < 2 or math.isnan(std):
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.1f}"


def table1_markdown(table: pd.DataFrame, std: pd.DataFrame) -> str:
    """Table 1 as Markdown, mean ± std over seeds rounded to one decimal as in the report."""
    head = "| System | Source | F20/1/on (%) | DOAE (°) | RDE (%) | OSA (%) | F20/1 (%) | Seeds |"
    lines = [head, "|" + "---|" * 8]
    for i, r in table.iterrows():
        cells = [_fmt(r[k], std.loc[i, k], r["n_seeds"]) for k in METRIC_KEYS]
        seeds = "" if r["n_seeds"] is pd.NA else str(int(r["n_seeds"]))
        lines.append(f"| {r['system']} | {r['source']} | " + " | ".join(cells) + f" | {seeds} |")
    return "\n".join(lines) + "\n"


def write_table1(table: pd.DataFrame, std: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write ``table1.csv`` (unrounded) and ``table1.md`` (rounded) atomically; return their paths."""
    figures_dir = Path(figures_dir)
    csv_path, md_path = figures_dir / "table1.csv", figures_dir / "table1.md"
    write_text_atomic(csv_path, table.to_csv(index=False, float_format="%.17g"))
    write_text_atomic(md_path, table1_markdown(table, std))
    return csv_path, md_path


def read_table1(path: str | Path) -> pd.DataFrame:
    """Read a ``table1.csv`` back (``runs`` as strings, empty for published rows)."""
    dtypes = {"runs": str, "system": str, "source": str, **{k: float for k in METRIC_KEYS}}
    return pd.read_csv(path, dtype=dtypes).fillna({"runs": ""})


# --------------------------------------------------------------------------------------------
# Per-class and ablation tables
# --------------------------------------------------------------------------------------------


def classwise_table(systems: dict[str, list[Path]], key: str = "F20", evaluate: Evaluator | None = None) -> pd.DataFrame:
    """Per-class metric (mean over seeds, report units), one column per system, one row per class."""
    cols = {}
    for label, dirs in systems.items():
        per_seed = []
        for d in dirs:
            cw = score_run(d, evaluate=evaluate).get("classwise") or []
            per_seed.append([to_report_units(c)[key] for c in cw] if cw else [math.nan] * len(CLASS_NAMES))
        cols[label] = np.nanmean(np.asarray(per_seed, dtype=float), axis=0) if per_seed else math.nan
    df = pd.DataFrame(cols, index=list(CLASS_NAMES))
    df.index.name = "class"
    return df


def ablation_table(variants: dict[str, tuple[str, str, list[Path]]], reference: str | dict[str, str],
                   workdir: Path | None = None, evaluate: Evaluator | None = None) -> pd.DataFrame:
    """Each variant's mean metrics and its difference to its reference system on the same seeds.

    Args:
        variants: ``{key: (label, note, run folders)}``; must contain every reference.
        reference: key of the reference system (AV-SELD), or ``{variant key: reference key}``
            (a reference row, and a variant missing from the dict, is compared with itself).

    Returns:
        One row per variant: ``key, label, note, <metrics>, d_<metric>, n_seeds, runs``
        (``d_`` = variant minus reference; lower DOAE/RDE is better, higher F/OSA is better).
    """
    refs = {k: reference for k in variants} if isinstance(reference, str) else {k: reference.get(k, k) for k in variants}
    for r in refs.values():
        if r not in variants:
            raise DataError(f"ablation table: reference system '{r}' has no runs")
    rows = {}
    for key, (label, note, dirs) in variants.items():
        r, s = system_row(label, list(dirs), workdir, evaluate)
        r.update({"key": key, "label": label, "note": note})
        r.update({f"std_{k}": s[k] for k in METRIC_KEYS})
        rows[key] = r
    for key, r in rows.items():
        ref = rows[refs[key]]
        r["against"] = ref["label"]
        r.update({f"d_{k}": r[k] - ref[k] for k in METRIC_KEYS})
    cols = ["key", "label", "note", "against", *METRIC_KEYS, *(f"d_{k}" for k in METRIC_KEYS),
            *(f"std_{k}" for k in METRIC_KEYS), "n_seeds", "runs"]
    return pd.DataFrame(list(rows.values()), columns=cols)


def ablation_markdown(df: pd.DataFrame) -> str:
    """The ablation table as Markdown (means, and the change against the reference in brackets)."""
    lines = ["| Variant | F20/1/on (%) | DOAE (°) | RDE (%) | OSA (%) | F20/1 (%) | Change |", "|" + "---|" * 7]
    for _, r in df.iterrows():
        cells = ["–" if math.isnan(r[k]) else f"{r[k]:.1f}" + ("" if math.isnan(r["d_" + k]) else f" ({r['d_' + k]:+.1f})")
                 for k in METRIC_KEYS]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['note']} |")
    return "\n".join(lines) + "\n"


def _write_csv_md(figures_dir: str | Path, name: str, df: pd.DataFrame, markdown: str,
                  index: bool = False) -> tuple[Path, Path]:
    """Write ``<name>.csv`` (unrounded) and ``<name>.md`` atomically; return their paths."""
    csv_path, md_path = Path(figures_dir) / f"{name}.csv", Path(figures_dir) / f"{name}.md"
    write_text_atomic(csv_path, df.to_csv(index=index, float_format="%.17g"))
    write_text_atomic(md_path, markdown)
    return csv_path, md_path


def write_ablations(df: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write ``ablations.csv`` and ``ablations.md`` atomically."""
    return _write_csv_md(figures_dir, "ablations", df, ablation_markdown(df))


def run_summary(run_dirs: list[Path], workdir: Path | None = None) -> pd.DataFrame:
    """One row per run from its metrics record (report units), for a quick look in a notebook."""
    rows = []
    for d in run_dirs:
        m = read_run_metrics(d)
        prov = m.get("provenance") or {}
        rows.append({"run": relative_to(d, workdir), **to_report_units(m), "seed": prov.get("seed"),
                     "best_epoch": m.get("best_epoch"),
                     "train_wall_s": prov.get("train_wall_s")})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Reference vs prediction, clip by clip
# --------------------------------------------------------------------------------------------


def load_clip_pair(run_dir: str | Path, clip: str | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """A clip's reference and predicted label arrays from a run (default: the busiest clip).

    Returns:
        ``(clip name, reference rows (R, 6), predicted rows (P, 6))``.
    """
    from avseld.dataset import read_label_csv

    ref_dir, pred_dir = run_folders(run_dir)
    refs = _reference_files(ref_dir)
    scored = [refs[p.stem] for p in sorted(pred_dir.glob("*.csv")) if p.stem in refs]
    if clip is None:
        if not scored:
            raise DataError(f"{pred_dir}: no prediction CSV with a reference in {ref_dir}")
        clip = max(scored, key=lambda p: (len(p.read_text().splitlines()), p.name)).stem
    if clip not in refs:
        raise DataError(f"{ref_dir}: no reference CSV for clip '{clip}'")
    ref = read_label_csv(refs[clip])
    pp = pred_dir / f"{clip}.csv"
    pred = read_label_csv(pp, reference=False) if pp.is_file() else np.zeros((0, 6))
    return clip, ref, pred


def onscreen_confusion(run_dirs: list[Path]) -> np.ndarray:
    """On-screen confusion over matched detections: ``(2, 2)`` counts, rows = reference off/on.

    A reference event is matched to the prediction of the same class in the same frame with the
    closest azimuth (within 20 degrees), which is how OSA pairs events; unmatched ones are left out.
    """
    cm = np.zeros((2, 2), dtype=np.int64)
    for d in run_dirs:
        for ref, pred in _label_pairs(Path(d)):
            for fr, cls, _, az, _, on in ref:
                cand = pred[(pred[:, 0] == fr) & (pred[:, 1] == cls)]
                if len(cand) == 0:
                    continue
                diff = np.abs((cand[:, 3] - az + 180.0) % 360.0 - 180.0)
                j = int(np.argmin(diff))
                if diff[j] <= 20.0:
                    cm[int(on > 0.5), int(cand[j, 5] > 0.5)] += 1
    return cm


def azimuth_agreement(run_dir: str | Path) -> dict[str, float]:
    """Did a run learn azimuth? Predicted against reference azimuth over unambiguous pairs.

    A pair is a (clip, frame, class) with exactly one reference and one predicted event, so no
    matching choice is involved. A run that learnt no azimuth predicts every event near the front:
    correlation and slope near 0 while it may still detect the classes.

    Returns:
        ``n_pairs``; ``corr`` (Pearson, NaN when either side is constant); ``slope`` of the
        least-squares line of predicted on reference azimuth; ``mean_abs_pred`` and ``mean_abs_ref``
        (degrees, how far from the front each side puts events); ``mean_abs_err`` (degrees).
    """
    pairs = []
    for ref, pred in _label_pairs(Path(run_dir)):
        predicted = _single_events(pred)
        pairs += [(az, predicted[k]) for k, az in _single_events(ref).items() if k in predicted]
    if not pairs:
        return {"n_pairs": 0, "corr": math.nan, "slope": math.nan, "mean_abs_pred": math.nan,
                "mean_abs_ref": math.nan, "mean_abs_err": math.nan}
    ref_az, pred_az = np.asarray(pairs, dtype=np.float64).T
    var_ref = float(np.var(ref_az))
    cov = float(np.mean((ref_az - ref_az.mean()) * (pred_az - pred_az.mean())))
    var_pred = float(np.var(pred_az))
    return {
        "n_pairs": len(pairs),
        "corr": cov / math.sqrt(var_ref * var_pred) if var_ref > 0 and var_pred > 0 else math.nan,
        "slope": cov / var_ref if var_ref > 0 else math.nan,
        "mean_abs_pred": float(np.mean(np.abs(pred_az))),
        "mean_abs_ref": float(np.mean(np.abs(ref_az))),
        "mean_abs_err": float(np.mean(np.abs(pred_az - ref_az))),
    }


def _single_events(rows: np.ndarray) -> dict[tuple[int, int], float]:
    """``{(frame, class): azimuth}`` for the frame-class cells holding exactly one event."""
    cells: dict[tuple[int, int], list[float]] = {}
    for fr, cls, _, az, *_ in rows:
        cells.setdefault((int(fr), int(cls)), []).append(float(az))
    return {k: v[0] for k, v in cells.items() if len(v) == 1}


def azimuth_table(runs: dict[str, list[Path]], workdir: Path | None = None) -> pd.DataFrame:
    """:func:`azimuth_agreement` of every run: one row per run, indexed by (system, run folder)."""
    rows = []
    for label, dirs in runs.items():
        for d in dirs:
            rows.append({"system": label, "run": relative_to(Path(d), workdir), **azimuth_agreement(d)})
    return pd.DataFrame(rows).set_index(["system", "run"])


def azimuth_markdown(df: pd.DataFrame) -> str:
    """:func:`azimuth_table` as Markdown (correlation and slope to 2 decimals, degrees to 1)."""
    lines = ["| System | Run | pairs | corr | slope | mean abs pred (°) | mean abs ref (°) | mean abs err (°) |",
             "|" + "---|" * 8]
    for (label, run), r in df.iterrows():
        lines.append(f"| {label} | {run} | {int(r['n_pairs'])} | {r['corr']:.2f} | {r['slope']:.2f} | "
                     f"{r['mean_abs_pred']:.1f} | {r['mean_abs_ref']:.1f} | {r['mean_abs_err']:.1f} |")
    return "\n".join(lines) + "\n"


def write_azimuth_table(df: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write ``azimuth_agreement.csv`` and ``azimuth_agreement.md`` atomically."""
    return _write_csv_md(figures_dir, "azimuth_agreement", df, azimuth_markdown(df), index=True)


# --------------------------------------------------------------------------------------------
# Comparisons with intervals, video controls, convergence
# --------------------------------------------------------------------------------------------

COMPARED_KEYS = ("F20", "F20_on", "DOAE", "RDE", "OSA")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label, its runs (one per seed) and the prediction folder scored
    (None: each run's dev-test predictions; ``dev-test.video-zeros``: a video control)."""

    label: str
    runs: tuple[Path, ...]
    split: str | None = None


def compare(system: Side, reference: Side, n_boot: int = 2000) -> dict[str, Any]:
    """One row of a comparison table: ``system - reference`` with a paired bootstrap 95 % interval over
    test clips, pooled over seeds (:func:`avseld.intervals.paired_difference`), and both pooled scores."""
    from avseld.intervals import paired_difference, pooled_scores, run_statistics

    a = [run_statistics(d, system.split) for d in system.runs]
    b = [run_statistics(d, reference.split) for d in reference.runs]
    diff = paired_difference(a, b, n_boot=n_boot)
    row: dict[str, Any] = {"system": system.label, "against": reference.label,
                           "n_seeds": len(system.runs), "n_seeds_against": len(reference.runs)}
    pa, pb = pooled_scores(a), pooled_scores(b)
    for k in COMPARED_KEYS:
        row[k] = pa[k]
        row[f"{k}_against"] = pb[k]
        row[f"d_{k}"], row[f"lo_{k}"], row[f"hi_{k}"] = diff[k]["diff"], diff[k]["low"], diff[k]["high"]
    return row


def comparison_table(pairs: list[tuple[Side, Side]], n_boot: int = 2000) -> pd.DataFrame:
    """:func:`compare` for every (system, reference) pair; one row each, in order."""
    return pd.DataFrame([compare(a, b, n_boot) for a, b in pairs])


def comparison_markdown(df: pd.DataFrame) -> str:
    """Differences with their 95 % intervals; a bold difference is one whose interval excludes 0."""
    head = ("| System | against | seeds | ΔF20/1 (pts) | ΔF20/1/on (pts) | ΔDOAE (°) | ΔRDE (pts) | ΔOSA (pts) |")
    lines = [head, "|" + "---|" * 8]
    for _, r in df.iterrows():
        cells = []
        for k in COMPARED_KEYS:
            d, lo, hi = r[f"d_{k}"], r[f"lo_{k}"], r[f"hi_{k}"]
            if not math.isfinite(d):
                cells.append("–")
                continue
            text = f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"
            cells.append(f"**{text}**" if (lo > 0 or hi < 0) else text)
        lines.append(f"| {r['system']} | {r['against']} | {int(r['n_seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparisons(df: pd.DataFrame, figures_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``<name>.csv`` (unrounded) and ``<name>.md`` atomically."""
    return _write_csv_md(figures_dir, name, df, comparison_markdown(df))


def smallest_detectable_difference(df: pd.DataFrame, key: str = "F20") -> float:
    """The largest 95 % half-width of ``key`` over a comparison table: a difference smaller than this
    may not exclude 0 in this study."""
    half = (df[f"hi_{key}"] - df[f"lo_{key}"]) / 2
    return float(half.max()) if len(half) else math.nan


def convergence_table(runs: dict[str, list[Path]], workdir: Path | None = None, threshold: float = 1.0) -> pd.DataFrame:
    """Did each run converge? Validation F20 (points) at the last epoch and its gain over the last
    quarter of the epochs (last epoch minus the epoch a quarter of the run before it); ``converged``
    when that gain is below ``threshold`` points (issue 15's criterion).

    ``last_quarter_trend``: the same gain read off a least-squares line through the last quarter's
    epochs (its slope x the quarter's length), which one noisy epoch at either end moves less; shown
    beside the criterion, never instead of it."""
    rows = []
    for label, dirs in runs.items():
        for d in dirs:
            log = RunFolder(d).read_log(required=True)
            f = [100.0 * (r.get("val") or {}).get("F20", math.nan) if (r.get("val") or {}).get("F20") is not None
                 else math.nan for r in log]
            if not f:
                raise DataError(f"{d}: empty log.jsonl")
            q = max(1, len(f) // 4)
            start = f[-1 - q] if len(f) > q else math.nan
            gain = f[-1] - start
            tail = np.asarray(f[-1 - q:], dtype=float)
            trend = (float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) * q
                     if len(f) > q and np.isfinite(tail).all() else math.nan)
            rows.append({"system": label, "run": relative_to(Path(d), workdir), "epochs": len(f),
                         "val_F20_last": f[-1], "val_F20_quarter_before": start, "last_quarter_gain": gain,
                         "last_quarter_trend": trend,
                         "val_F20_max": float(np.nanmax(f)), "best_epoch": int(log[-1].get("best_epoch", len(f))),
                         "converged": bool(math.isfinite(gain) and gain < threshold)})
    return pd.DataFrame(rows)


def convergence_markdown(df: pd.DataFrame) -> str:
    lines = ["| System | Run | epochs | val F20 last (%) | gain over last quarter (pts) | fitted gain (pts) | best epoch "
             "| converged |", "|" + "---|" * 8]
    for _, r in df.iterrows():
        lines.append(f"| {r['system']} | {r['run']} | {r['epochs']} | {r['val_F20_last']:.1f} | "
                     f"{r['last_quarter_gain']:+.1f} | {r['last_quarter_trend']:+.1f} | {r['best_epoch']} | "
                     f"{'yes' if r['converged'] else 'no'} |")
    return "\n".join(lines) + "\n"


def write_convergence(df: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write ``convergence.csv`` and ``convergence.md`` atomically."""
    return _write_csv_md(figures_dir, "convergence", df, convergence_markdown(df))


def seed_scores(runs: dict[str, list[Path]], split: str | None = None, workdir: Path | None = None) -> pd.DataFrame:
    """One row per (system, run): its dev-test metrics (report units) re-scored from its CSVs."""
    rows = []
    for label, dirs in runs.items():
        for d in dirs:
            m = to_report_units(score_run(d, split))
            rows.append({"system": label, "run": relative_to(Path(d), workdir), **m})
    return pd.DataFrame(rows)
