"""``avseld evaluate``: score prediction CSVs against reference CSVs with the DCASE 2025 metric.

Does not import torch: scoring needs only numpy and scipy (SPEC section 3).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from avseld.layout import CLASS_NAMES

_KEYS = ("F20", "F20_on", "DOAE", "DE", "RDE", "OSA")
_PERCENT = {"F20", "F20_on", "RDE", "OSA"}  # shown as percentages in the table (fractions in JSON)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ref", required=True, help="reference CSV folder: split folders (metadata_dev/) or flat")
    p.add_argument("--pred", required=True, help="prediction CSV folder: flat or split folders")
    p.add_argument("--average", choices=("macro", "micro"), default="macro", help="class averaging (official: macro)")
    p.add_argument("--jackknife", action="store_true", help="add leave-one-clip-out 95%% confidence intervals")
    p.add_argument("--full-clip", action="store_true",
                   help="score all frames (default: the official truncation at the last reference frame)")
    p.add_argument("--doa-threshold", type=float, default=20.0, help="angular threshold in degrees (inclusive)")
    p.add_argument("--dist-threshold", type=float, default=1.0, help="relative distance threshold (inclusive)")
    p.add_argument("--json", action="store_true", help="print one JSON object (NaN as null) instead of a table")


def _nan_to_none(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def _fmt(key: str, v: float) -> str:
    if v is None or math.isnan(v):
        return "-"
    return f"{100 * v:.1f}" if key in _PERCENT else f"{v:.1f}"


def format_table(res: dict) -> str:
    """Readable text table of an evaluation result (F, RDE, OSA in percent; DOAE deg; DE cm)."""
    head = f"{'':<20}" + "".join(f"{k:>16}" for k in _KEYS)
    lines = [f"files scored: {res['n_files']}", head]
    lines.append(f"{'overall':<20}" + "".join(f"{_fmt(k, res[k]):>16}" for k in _KEYS))
    if "ci" in res:
        cells = [f"[{_fmt(k, res['ci'][k][0])}, {_fmt(k, res['ci'][k][1])}]" for k in _KEYS]
        lines.append(f"{'95% CI (jackknife)':<20}" + "".join(f"{c:>16}" for c in cells))
        lines.append(f"{'jackknife estimate':<20}" + "".join(f"{_fmt(k, res['estimate'][k]):>16}" for k in _KEYS))
    lines.append("")
    lines.append(f"{'class':<20}" + "".join(f"{k:>16}" for k in _KEYS))
    for name, row in zip(CLASS_NAMES, res["classwise"]):
        lines.append(f"{name:<20}" + "".join(f"{_fmt(k, row[k]):>16}" for k in _KEYS))
    lines.append("F20, F20_on, RDE, OSA in %; DOAE in degrees; DE in CSV units (cm); '-' = undefined")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from avseld.metrics import evaluate_folders

    res = evaluate_folders(args.ref, args.pred, average=args.average, jackknife=args.jackknife,
                           full_clip=args.full_clip, doa_threshold=args.doa_threshold,
                           dist_threshold=args.dist_threshold)
    if args.json:
        sys.stdout.write(json.dumps(_nan_to_none(res), allow_nan=False) + "\n")
    else:
        sys.stdout.write(format_table(res))
    return 0
