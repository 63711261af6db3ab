"""Label-CSV robustness: any valid CSV parses, garbage raises only DataError, bad files give clear CLI errors.

What the tools do with each kind of bad label CSV (also in the README):
- missing or wrong header, missing or extra column, non-integer frame/class/source/onscreen,
  non-numeric or non-finite azimuth/distance, negative frame/source/distance, class outside 0..12,
  onscreen not 0/1, a reference azimuth outside [-180, 180] (e.g. 400): DataError naming the file
  and the line; ``avseld evaluate`` prints ``error: ...`` and exits 2, no traceback.
- a prediction azimuth outside [-180, 180] (any finite value): scored as the official metric does,
  wrapped with (az + 180) % 360 - 180 and folded; one warning with the count, first file and line.
- duplicated rows (a row repeated exactly): in a reference file an error naming both lines (an
  instance cannot be listed twice); in a prediction file a warning naming both lines, and both
  copies are scored as separate instances, exactly as the official metric does.
- blank lines are skipped; CRLF line ends and spaces around values are accepted.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from avseld.cli import main as cli_main
from avseld.dataset import CSV_HEADER, parse_label_csv_text, read_label_csv
from avseld.errors import DataError
from avseld.metrics import evaluate_folders, parse_label_csv_fast, read_label_csvs

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])

int_col = st.integers(0, 10_000)
valid_row = st.tuples(int_col, st.integers(0, 12), int_col,
                      st.one_of(st.integers(-180, 180), st.floats(-180, 180, allow_nan=False)),
                      st.one_of(st.integers(0, 5000), st.floats(0, 5000, allow_nan=False)),
                      st.integers(0, 1))


@st.composite
def valid_csv(draw):
    rows = draw(st.lists(valid_row, max_size=30))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    pad = draw(st.sampled_from(["", " "]))
    header = CSV_HEADER.replace(",", f",{pad}") if draw(st.booleans()) else CSV_HEADER
    lines = [header] + [",".join(f"{pad}{v!r}" if isinstance(v, float) else f"{pad}{v}" for v in r) for r in rows]
    if rows and draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), "")  # a blank line somewhere
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    return text, np.asarray([[float(v) for v in r] for r in rows], dtype=np.float64).reshape(-1, 6)


@SETTINGS
@given(valid_csv())
def test_any_valid_csv_parses(case):
    text, want = case
    np.testing.assert_array_equal(parse_label_csv_text(text, "x.csv"), want)
    np.testing.assert_array_equal(parse_label_csv_fast(text, "x.csv"), want)


@SETTINGS
@given(st.lists(valid_csv(), min_size=1, max_size=4))
def test_bulk_reader_equals_strict_reader(tmp_path, cases):
    paths = []
    for i, (text, _) in enumerate(cases):
        path = tmp_path / f"f{i}.csv"
        path.write_bytes(text.encode())
        paths.append(path)
    for got, path in zip(read_label_csvs(paths), paths):
        np.testing.assert_array_equal(got, read_label_csv(path))


wide_az = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e12, 1e12, allow_nan=False),
                    st.sampled_from([190, 200, 250, -270, 360, 540, 720, 180, -180, 180.5, -180.5]))


@SETTINGS
@given(st.lists(st.lists(st.tuples(int_col, st.integers(0, 12), int_col, wide_az, st.integers(0, 5000),
                                   st.integers(0, 1)), max_size=20), min_size=1, max_size=4))
def test_prediction_readers_accept_any_finite_azimuth(tmp_path, files):
    """Predictions: any finite azimuth, identical from the strict, fast and bulk readers; as
    references the same files are refused at the first azimuth outside [-180, 180]."""
    paths = []
    for i, rows in enumerate(files):
        path = tmp_path / f"p{i}.csv"
        path.write_text("\n".join([CSV_HEADER] + [",".join(map(str, r)) for r in rows]) + "\n")
        paths.append(path)
    for got, path, rows in zip(read_label_csvs(paths, reference=False), paths, files):
        want = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(read_label_csv(path, reference=False), want)
        np.testing.assert_array_equal(parse_label_csv_fast(path.read_text(), str(path)), want)
    # the first out-of-range line of each file (which bad file is named first depends on the read path)
    first_bad = {str(p): next((j + 2 for j, r in enumerate(rows) if abs(r[3]) > 180), None)
                 for p, rows in zip(paths, files)}
    if any(first_bad.values()):
        with pytest.raises(DataError) as err:
            read_label_csvs(paths)  # reference=True is the default of the file readers
        assert any(str(err.value).startswith(f"{p}: line {line}: azimuth must be in [-180, 180] degrees")
                   for p, line in first_bad.items() if line), str(err.value)
    else:
        for got, path in zip(read_label_csvs(paths), paths):
            np.testing.assert_array_equal(got, read_label_csv(path))


def mutate(text: str, data) -> str:
    """Random edits of a valid CSV: insert, delete or replace characters."""
    chars = st.sampled_from(list("0123456789-.,e +\n\r\t\x00é٣") + ["nan", "inf", "1e999", "9" * 400])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        c = data.draw(chars)
        text = text[:i] + c + text[i:] if op == "insert" else text[:i] + ("" if op == "delete" else c) + text[i + 1:]
    return text


def strict_or_error(text: str, reference: bool = False):
    try:
        return parse_label_csv_text(text, "g.csv", reference=reference)
    except DataError as e:
        return str(e)


@SETTINGS
@given(valid_csv(), st.data(), st.booleans())
def test_garbage_raises_only_data_error(case, data, reference):
    text = mutate(case[0], data)
    strict = strict_or_error(text, reference)  # any other exception fails the test
    try:
        fast = parse_label_csv_fast(text, "g.csv", reference=reference)
    except DataError as e:
        fast = str(e)
    if isinstance(strict, str):
        assert fast == strict and "g.csv: line " in strict
    else:
        assert strict.shape[1] == 6
        np.testing.assert_array_equal(fast, strict)


@SETTINGS
@given(st.text(max_size=200))
@example("9" * 400 + ",1,0,0,0,0")  # once an OverflowError in the float64 conversion
@example("0,1," + "9" * 20 + ",0,0,0")
@example("0,1,0,0," + "9" * 400 + ",0")
def test_arbitrary_text_raises_only_data_error(text):
    strict_or_error(text)
    strict_or_error(CSV_HEADER + "\n" + text)


def test_binary_and_unreadable_files(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "dir.csv").mkdir()
    for name in ("bin.csv", "dir.csv"):
        with pytest.raises(DataError, match=name):
            read_label_csvs([tmp_path / name])


# ----------------------------------------------------------------------------------------------
# The bad-input corpus through `avseld evaluate`
# ----------------------------------------------------------------------------------------------

GOOD = CSV_HEADER + "\n0,1,0,10,100,1\n1,1,0,12,100,1\n2,1,0,14,100,1\n"
BAD = {
    "missing_header": ("0,1,0,10,100,1\n1,1,0,12,100,1\n", "line 1: expected header"),
    "short_row": (CSV_HEADER + "\n0,1,0,10,100,1\n1,1,0,12\n", "line 3: expected 6 values, got 4"),
    "extra_column": (CSV_HEADER + "\n0,1,0,10,100,1,7\n", "line 2: expected 6 values, got 7"),
    "non_integer": (CSV_HEADER + "\n0,1.5,0,10,100,1\n", "line 2: column 'class' must be an integer"),
    "class_13": (CSV_HEADER + "\n0,1,0,10,100,1\n0,13,0,10,100,1\n", "line 3: class must be in 0..12, got 13"),
    "onscreen_2": (CSV_HEADER + "\n0,1,0,10,100,2\n", "line 2: onscreen must be 0 or 1, got 2"),
    "negative_frame": (CSV_HEADER + "\n-1,1,0,10,100,1\n", "line 2: frame must be >= 0"),
    "azimuth_400": (CSV_HEADER + "\n0,1,0,10,100,1\n1,1,0,400,100,1\n", "line 3: azimuth must be in [-180, 180]"),
    "not_a_number": (CSV_HEADER + "\n0,1,0,ten,100,1\n", "line 2: column 'azimuth' must be a number"),
    "huge_frame": (CSV_HEADER + "\n" + "9" * 30 + ",1,0,10,100,1\n", "line 2: column 'frame' is out of range"),
    "duplicated_rows": (CSV_HEADER + "\n0,1,0,10,100,1\n1,1,0,12,100,1\n\n0,1,0,10,100,1\n",
                        "line 5: duplicated row (same as line 2)"),
}


def write_case(tmp_path, ref_text: str, pred_text: str):
    ref_dir, pred_dir = tmp_path / "ref" / "dev-test-x", tmp_path / "pred"
    ref_dir.mkdir(parents=True)
    pred_dir.mkdir()
    (ref_dir / "clip.csv").write_text(ref_text)
    (pred_dir / "clip.csv").write_text(pred_text)
    return tmp_path / "ref", pred_dir


@pytest.mark.parametrize("side", ["ref", "pred"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_csv_is_a_clear_cli_error(tmp_path, capsys, name, side):
    text, message = BAD[name]
    if name == "duplicated_rows" and side == "pred":
        pytest.skip("duplicated prediction rows are scored, see test_duplicated_prediction_rows")
    if name == "azimuth_400" and side == "pred":
        pytest.skip("prediction azimuths outside [-180, 180] are scored, see test_prediction_azimuth_400")
    ref_dir, pred_dir = write_case(tmp_path, text if side == "ref" else GOOD, text if side == "pred" else GOOD)
    rc = cli_main(["evaluate", "--ref", str(ref_dir), "--pred", str(pred_dir)])
    err = capsys.readouterr().err
    path = (ref_dir / "dev-test-x" / "clip.csv") if side == "ref" else (pred_dir / "clip.csv")
    assert rc == 2
    assert err.startswith(f"error: {path}: ") and message in err and "Traceback" not in err


def test_duplicated_prediction_rows_scored_as_official(tmp_path, caplog):
    dup = CSV_HEADER + "\n0,1,0,10,100,1\n1,1,0,12,100,1\n1,1,0,12,100,1\n"
    ref_dir, pred_dir = write_case(tmp_path, GOOD, dup)
    with caplog.at_level(logging.WARNING, logger="avseld.metrics"):
        res = evaluate_folders(ref_dir, pred_dir, average="micro")
    assert "clip.csv: line 4 repeats line 3 exactly" in caplog.text
    # frames 0 and 1 scored (2 is the last reference frame): 2 hits + 1 extra instance
    assert res["F20"] == pytest.approx(2 / (2 + 0.5 * 1))


def test_prediction_azimuth_400_scored_as_official(tmp_path, caplog):
    """400 wraps to 40 (as the official fold_az_angle): frame 1 of BAD['azimuth_400'] scores 40 vs 12."""
    ref_dir, pred_dir = write_case(tmp_path, GOOD, BAD["azimuth_400"][0])
    with caplog.at_level(logging.WARNING, logger="avseld.metrics"):
        res = evaluate_folders(ref_dir, pred_dir, average="micro")
    assert f"1 row(s) in 1 file(s), first {pred_dir / 'clip.csv'}: line 3 (azimuth 400)" in caplog.text
    assert res["DOAE"] == pytest.approx((0 + 28) / 2) and res["F20"] == pytest.approx(1 / 2)


def test_missing_and_empty_folders(tmp_path, capsys):
    ref_dir, pred_dir = write_case(tmp_path, GOOD, GOOD)
    assert cli_main(["evaluate", "--ref", str(tmp_path / "nope"), "--pred", str(pred_dir)]) == 2
    assert "reference folder does not exist" in capsys.readouterr().err
    (pred_dir / "clip.csv").unlink()
    assert cli_main(["evaluate", "--ref", str(ref_dir), "--pred", str(pred_dir)]) == 2
    assert "no prediction CSV files" in capsys.readouterr().err
