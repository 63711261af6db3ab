"""Label-CSV folders for scoring: bulk vectorized reading (exactly the strict reader's results and
errors), duplicated-row and out-of-range azimuth checks, and :func:`evaluate_folders`.

References are read as dataset label files (azimuth in [-180, 180]); predictions as the official
metric reads them (any finite azimuth, scored wrapped and folded by ``fold_azimuth``)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import numpy as np

from avseld.errors import DataError
from avseld.layout import N_CLASSES
from avseld.metrics.scoring import _AZ, _CLASS, _DIST, _FRAME, _ON, _SOURCE, _stack_rows, compute_seld_metrics

log = logging.getLogger(__name__)

# A data row in the canonical form written by DCASE tools (integers, optional decimals, no spaces).
_NUM_INT, _NUM_DEC = r"-?[0-9]+", r"-?[0-9]+(?:\.[0-9]+)?"
_ROW = ",".join([_NUM_INT] * 3 + [_NUM_DEC] * 2 + [_NUM_INT])
_BODY_RE = re.compile(f"{_ROW}(?:\n{_ROW})*")
_NOT_PLAIN_RE = re.compile(r"[^0-9,\n-]|\n\n|^\n")  # anything but plain integer rows


def _parse_canonical(text: str) -> np.ndarray | None:
    """Values of canonical CSV text (exact header, rows of plain numbers), unchecked; else None."""
    from avseld.dataset import CSV_HEADER

    head, _, body = text.replace("\r\n", "\n").partition("\n")
    body = body.rstrip("\n")
    if head.strip().replace(" ", "") != CSV_HEADER or "\r" in body:
        return None
    if not body:
        return np.zeros((0, 6))
    if not _BODY_RE.fullmatch(body):
        return None
    v = np.array(body.replace("\n", ",").split(","), dtype=np.float64).reshape(-1, 6)
    v[:, [_FRAME, _CLASS, _SOURCE, _ON]] += 0.0  # "-0" is integer 0, not float -0.0
    return v


def _valid_rows(v: np.ndarray, reference: bool) -> np.ndarray:
    """``(n,)`` mask of the rows of an ``(n, 6)`` array that pass the strict reader's range checks."""
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(v).all(axis=1) & (np.abs(v[:, [_FRAME, _CLASS, _SOURCE, _ON]]) <= 2**53).all(axis=1)
              & (v[:, _FRAME] >= 0) & (v[:, _CLASS] >= 0)
              & (v[:, _CLASS] < N_CLASSES) & (v[:, _SOURCE] >= 0) & ((v[:, _ON] == 0) | (v[:, _ON] == 1))
              & (v[:, _DIST] >= 0))
        return ok & (np.abs(v[:, _AZ]) <= 180) if reference else ok


def parse_label_csv_fast(text: str, name: str = "<string>", *, reference: bool = False) -> np.ndarray:
    """:func:`avseld.dataset.parse_label_csv_text` with a vectorized path for canonical text.

    Canonical text (exact header, rows of plain numbers, ``\\n`` or ``\\r\\n`` line ends) is parsed
    and range-checked with numpy; anything else, or any failed check, goes through the strict
    reader, so accepted inputs, values and error messages are exactly the strict reader's
    (``reference`` as there: refuse azimuths outside [-180, 180]).
    """
    from avseld.dataset import parse_label_csv_text

    v = _parse_canonical(text)
    if v is not None and _valid_rows(v, reference).all():
        return v
    return parse_label_csv_text(text, name, reference=reference)


def read_label_csvs(paths: list[Path], *, reference: bool = True) -> list[np.ndarray]:
    """Read many label CSVs exactly as :func:`avseld.dataset.read_label_csv`, checking all at once.

    Bodies made only of digits, minus signs, commas and single line breaks (what DCASE tools
    write) are parsed together by numpy's C reader; other files go through the per-file path of
    :func:`parse_label_csv_fast`. Accepted inputs, values and errors are the strict reader's
    (``reference`` as there: reference files refuse azimuths outside [-180, 180], predictions
    accept any finite azimuth).

    Raises:
        DataError: the strict reader's error for the first bad file (naming file and line).
    """
    from avseld.dataset import CSV_HEADER, read_label_csv

    arrays: list[np.ndarray | None] = [None] * len(paths)
    bulk: list[int] = []
    bodies: list[str] = []
    for i, path in enumerate(paths):
        try:
            with open(path) as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            arrays[i] = read_label_csv(path, reference=reference)  # raises the strict reader's DataError
            continue
        head, _, body = (text.replace("\r\n", "\n") if "\r" in text else text).partition("\n")
        body = body.rstrip("\n")
        if head.strip().replace(" ", "") == CSV_HEADER and not body:
            arrays[i] = np.zeros((0, 6))
        elif head.strip().replace(" ", "") == CSV_HEADER and not _NOT_PLAIN_RE.search(body):
            bulk.append(i)
            bodies.append(body)
        else:
            arrays[i] = parse_label_csv_fast(text, str(path), reference=reference)
    if bulk:
        values = None
        try:
            values = np.loadtxt(io.StringIO("\n".join(bodies)), delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError:
            pass
        if values is None or values.shape[1] != 6:  # malformed somewhere: file by file
            for i in bulk:
                arrays[i] = parse_label_csv_fast(Path(paths[i]).read_text(), str(paths[i]), reference=reference)
        else:
            values[:, [_FRAME, _CLASS, _SOURCE, _ON]] += 0.0  # "-0" is integer 0, not float -0.0
            cuts = np.cumsum([b.count("\n") + 1 for b in bodies])[:-1]
            for i, v in zip(bulk, np.split(values, cuts)):
                arrays[i] = v
    stacked = _stack_rows(arrays, 0)
    bad = ~_valid_rows(stacked[:, 2:], reference)
    if bad.any():
        first = int(stacked[np.argmax(bad), 0])
        arrays[first] = read_label_csv(paths[first], reference=reference)  # raises, naming the line
    return arrays


def _files_with_duplicates(arrays: list[np.ndarray], names: list[str]) -> list[str]:
    """Names of the files whose label array repeats a row exactly (vectorized over all files)."""
    rows = _stack_rows(arrays, 0)
    if len(rows) < 2:
        return []
    # Only rows sharing (clip, frame, class) can be duplicates: find those with one integer sort.
    if rows[:, 2].max() < 2 ** 24 and len(arrays) < 2 ** 30:
        key = (rows[:, 0].astype(np.int64) << 28) | (rows[:, 2].astype(np.int64) << 4) | rows[:, 3].astype(np.int64)
        key.sort()
        shared = np.unique(key[1:][key[1:] == key[:-1]])
        rows = rows[np.isin((rows[:, 0].astype(np.int64) << 28) | (rows[:, 2].astype(np.int64) << 4)
                            | rows[:, 3].astype(np.int64), shared)]
        if len(rows) < 2:
            return []
    rows = rows[np.lexsort(rows.T[::-1])]
    same = np.all(rows[1:] == rows[:-1], axis=1)
    return [names[i] for i in np.unique(rows[1:][same, 0].astype(np.int64))]


def _row_lines(path: str | Path) -> list[int]:
    """1-based line number of each row of a CSV file (the strict reader skips blank lines, so row i
    is the i-th non-blank line after the header)."""
    text_lines = Path(path).read_text().splitlines()
    return [i for i, line in enumerate(text_lines[1:], start=2) if line.strip()]


def duplicated_rows(path: str | Path, rows: np.ndarray) -> tuple[int, int] | None:
    """Line numbers ``(first, repeat)`` of the first row repeated exactly in a CSV file, or None.

    Args:
        path: the file ``rows`` were read from (re-read only when there is a duplicate, to name
            its lines).
        rows: ``(n, 6)`` label array read from ``path``.
    """
    if len(rows) < 2:
        return None
    order = np.lexsort(rows.T[::-1])
    same = np.all(rows[order[1:]] == rows[order[:-1]], axis=1)
    if not same.any():
        return None
    line_of = _row_lines(path)  # rare path: name the lines
    seen: dict[tuple, int] = {}
    for i, row in enumerate(map(tuple, rows.tolist())):
        if row in seen:
            return line_of[seen[row]], line_of[i]
        seen[row] = i
    return None


def _warn_out_of_range_azimuths(arrays: list[np.ndarray], paths: list[Path]) -> int:
    """Warn once about prediction rows with an azimuth outside [-180, 180]; return their count.

    Such rows are scored as the official metric scores them: wrapped with
    ``(az + 180) mod 360 - 180`` and folded to [-90, 90] (:func:`avseld.metrics.fold_azimuth`).
    The warning names the count, the number of files, and the first file (in ``paths`` order)
    and line.

    Args:
        arrays: ``(n, 6)`` prediction label arrays.
        paths: the file each array was read from (re-read only when there is such a row).
    """
    rows = _stack_rows(arrays, 0)
    out = np.abs(rows[:, 2 + _AZ]) > 180
    n = int(out.sum())
    if n:
        k = int(np.argmax(out))
        clip = int(rows[k, 0])
        row = k - int(np.searchsorted(rows[:, 0], clip))  # row index inside its file
        n_files = len(np.unique(rows[out, 0]))
        log.warning("prediction azimuths outside [-180, 180] degrees: %d row(s) in %d file(s), first %s: line %d "
                    "(azimuth %g); scored wrapped with (az + 180) mod 360 - 180 and folded, as officially",
                    n, n_files, paths[clip], _row_lines(paths[clip])[row], rows[k, 2 + _AZ])
    return n


def _csv_files(folder: Path, what: str) -> dict[str, Path]:
    """``clip name -> path`` for a flat folder of CSVs or a folder of split folders of CSVs."""
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder does not exist")
    found: dict[str, Path] = {}
    flat = sorted((p for p in folder.glob("*.csv") if not p.name.startswith(".")), key=str)
    nested = sorted((p for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                     for p in d.glob("*.csv") if not p.name.startswith(".")), key=str)
    for p in flat + nested:
        if p.stem in found:
            raise DataError(f"{p}: clip name '{p.stem}' also in {found[p.stem]} ({what} names must be unique)")
        found[p.stem] = p
    return found


def evaluate_folders(
    ref_dir: str | Path,
    pred_dir: str | Path,
    average: str = "macro",
    jackknife: bool = False,
    full_clip: bool = False,
    doa_threshold: float = 20.0,
    dist_threshold: float = 1.0,
) -> dict:
    """Score a folder of prediction CSVs against a folder of reference CSVs (the CSV-folder API).

    Args:
        ref_dir: flat folder of reference CSVs or a folder of split folders (``metadata_dev/``).
        pred_dir: flat folder of prediction CSVs or split folders; names match by clip name.
        average, jackknife, full_clip, doa_threshold, dist_threshold: as in
            :func:`compute_seld_metrics`.

    Returns:
        The dict of :func:`compute_seld_metrics`.

    Raises:
        DataError: missing folder, no prediction CSV, a prediction without reference (naming the
            file), duplicated clip names, a malformed CSV or a reference azimuth outside
            [-180, 180] (naming file and line).

    Duplicated prediction rows and prediction azimuths outside [-180, 180] are scored as
    officially, with a logged warning naming the first file and line.
    """
    refs, preds = read_folders(ref_dir, pred_dir)
    return compute_seld_metrics(refs, preds, average=average, jackknife=jackknife, full_clip=full_clip,
                                doa_threshold=doa_threshold, dist_threshold=dist_threshold)


def read_folders(ref_dir: str | Path, pred_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The reference and prediction label arrays that :func:`evaluate_folders` scores, with its checks
    and warnings: ``({clip: reference rows}, {clip: predicted rows})`` over the clips that have a
    prediction file, in name order (a reference without a prediction is skipped, as officially).

    Raises:
        DataError: as :func:`evaluate_folders`.
    """
    ref_files = _csv_files(Path(ref_dir), "reference")
    pred_files = _csv_files(Path(pred_dir), "prediction")
    if not pred_files:
        raise DataError(f"{pred_dir}: no prediction CSV files")
    orphans = sorted(set(pred_files) - set(ref_files))
    if orphans:
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise DataError(f"{pred_files[orphans[0]]}: prediction file has no reference file in {ref_dir}{more}")
    skipped = len(ref_files) - len(pred_files)
    if skipped:
        log.info("%d reference files have no prediction file and are skipped (as officially)", skipped)
    names = sorted(pred_files)
    refs = dict(zip(names, read_label_csvs([ref_files[n] for n in names], reference=True)))
    preds = dict(zip(names, read_label_csvs([pred_files[n] for n in names], reference=False)))
    for n in _files_with_duplicates([refs[n] for n in names], names):
        first, again = duplicated_rows(ref_files[n], refs[n])
        raise DataError(f"{ref_files[n]}: line {again}: duplicated row (same as line {first}); "
                        "a reference instance cannot be listed twice")
    for n in _files_with_duplicates([preds[n] for n in names], names):
        dup = duplicated_rows(pred_files[n], preds[n])
        log.warning("%s: line %d repeats line %d exactly; scored as two instances, as officially",
                    pred_files[n], dup[1], dup[0])
    _warn_out_of_range_azimuths([preds[n] for n in names], [pred_files[n] for n in names])
    return refs, preds
