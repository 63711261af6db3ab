"""avseld.metrics against outputs of the official DCASE 2025 metric stored in tests/fixtures/metrics.

The fixtures (inputs and official outputs, no official code) are made by
``tests/fixtures/metrics/make_fixtures.py``; the designed cases cover same-class overlaps, Hungarian
ties, threshold edges, folding, empty files, frames past the last reference frame, absent classes,
missing prediction files, more than 10 tracks, on-screen mismatches and duplicated rows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from avseld.dataset import parse_label_csv_text
from avseld.metrics import METRIC_KEYS, compute_seld_metrics, evaluate_folders

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))
RTOL = 1e-9


def load_case(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def arrays(case: dict) -> tuple[dict, dict]:
    refs = {Path(k).stem: parse_label_csv_text(v, k) for k, v in case["refs"].items()}
    preds = {Path(k).stem: parse_label_csv_text(v, k) for k, v in case["preds"].items()}
    return refs, preds


def assert_close(got: float, want: float | None, what: str, scale: float | None = None) -> None:
    if want is None:
        assert math.isnan(got), f"{what}: expected NaN (official), got {got}"
        return
    tol = RTOL * max(abs(want), scale or 0.0, 1e-300)
    assert abs(got - want) <= tol, f"{what}: {got!r} != official {want!r}"


def test_enough_cases():
    designed = [c for c in CASES if not c.startswith("random")]
    assert len(designed) >= 12 and len(CASES) - len(designed) >= 3


@pytest.mark.parametrize("average", ["macro", "micro"])
@pytest.mark.parametrize("name", CASES)
def test_matches_official(name, average):
    case = load_case(name)
    refs, preds = arrays(case)
    res = compute_seld_metrics(refs, preds, average=average, jackknife=True)
    want = case["expected"][average]
    for key in METRIC_KEYS:
        assert_close(res[key], want[key], f"{name} {average} {key}")
    if average == "macro":
        for c, (got_c, want_c) in enumerate(zip(res["classwise"], want["classwise"])):
            for key in METRIC_KEYS:
                assert_close(got_c[key], want_c[key], f"{name} class {c} {key}")
    assert res["n_files"] == len(case["preds"])
    jk = case.get("expected_jackknife", {}).get(average)
    if jk:
        for key, (lo, hi) in jk["ci"].items():
            if lo is None:
                assert math.isnan(res["ci"][key][0]) and math.isnan(res["ci"][key][1])
                continue
            # Bounds are estimate -/+ t * se: compare on the scale of those terms (the official
            # Student-t quantile itself differs by ~1e-11 relative between scipy versions).
            scale = abs(jk["estimate"][key] or 0.0) + abs(hi - lo)
            assert_close(res["ci"][key][0], lo, f"{name} {average} ci low {key}", scale)
            assert_close(res["ci"][key][1], hi, f"{name} {average} ci high {key}", scale)
        for key, est in jk["estimate"].items():
            assert_close(res["estimate"][key], est, f"{name} {average} estimate {key}")


def write_case_folders(case: dict, root: Path) -> None:
    """A fixture case's reference and prediction CSVs as ``root/ref/...`` and ``root/pred/...``."""
    for rel, text in case["refs"].items():
        (root / "ref" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "ref" / rel).write_text(text)
    (root / "pred").mkdir()
    for rel, text in case["preds"].items():
        (root / "pred" / rel).write_text(text)


@pytest.mark.parametrize("name", ["over_ten_tracks", "multi_split_decimal", "random_2", "missing_prediction_file"])
def test_folder_api_matches_official(tmp_path, name):
    case = load_case(name)
    write_case_folders(case, tmp_path)
    for average in ("macro", "micro"):
        res = evaluate_folders(tmp_path / "ref", tmp_path / "pred", average=average)
        for key in METRIC_KEYS:
            assert_close(res[key], case["expected"][average][key], f"{name} folder {average} {key}")


def test_fixture_behaviours_are_what_spec_says():
    """The official behaviours of SPEC section 3, read off the official outputs themselves."""
    exp = {n: load_case(n)["expected"] for n in CASES}
    # a header-only reference scores nothing; a reference annotated only at frame 0 neither
    assert exp["single_frame_reference"]["macro"]["F20"] == 0.0
    assert exp["single_frame_reference"]["macro"]["DOAE"] is None
    # absent classes count as F = 0 in the macro mean: a perfect prediction of 4 classes
    assert exp["perfect"]["macro"]["F20"] == pytest.approx(4 / 13)
    assert exp["perfect"]["micro"]["F20"] == pytest.approx(1.0)
    # frames at and after the last reference frame (14) are not scored: 9 hits, 5 + 2 false alarms
    assert exp["frames_past_reference"]["micro"]["F20"] == pytest.approx(9 / (9 + 0.5 * 7))
    # an angular error of exactly 20 degrees passes, 20.5 fails (10 frames scored, 4 pass)
    assert exp["doa_threshold_edge"]["micro"]["F20"] == pytest.approx(4 / 10)


def test_perfect_full_clip_scores_last_frame():
    case = load_case("perfect")
    refs, preds = arrays(case)
    official = compute_seld_metrics(refs, preds, average="micro")
    full = compute_seld_metrics(refs, preds, average="micro", full_clip=True)
    assert official["F20"] == pytest.approx(1.0) and full["F20"] == pytest.approx(1.0)
    # full_clip scores the last frame too: more matched pairs, identical errors
    assert full["DOAE"] == 0.0 and full["OSA"] == 1.0
    frames = compute_seld_metrics(refs, {k: v[v[:, 0] < 5] for k, v in preds.items()}, average="micro",
                                  full_clip=True)
    assert frames["F20"] < 1.0


def test_ties_depend_on_row_order_like_official():
    """With equal azimuth costs the official pairing follows the file order; so does ours."""
    case = load_case("hungarian_ties")
    refs, preds = arrays(case)
    res = compute_seld_metrics(refs, preds, average="micro")
    want = case["expected"]["micro"]
    assert res["DE"] == pytest.approx(want["DE"], rel=RTOL)
    swapped = {k: v[np.lexsort((-v[:, 2], v[:, 1], v[:, 0]))] for k, v in preds.items()}
    assert compute_seld_metrics(refs, swapped, average="micro")["DE"] != pytest.approx(want["DE"])
