"""Clip records, DCASE 2025 layout discovery, label-CSV reading/writing, audio and video loading:
the dataset's discovery and I/O (checks live in :mod:`avseld.validate`, statistics in :mod:`avseld.stats`).

The same code reads the real Stereo SELD dataset (SPEC section 2) and the embedded synthetic one.
Label arrays are ``(n_rows, 6)`` float64 with columns ``frame, class, source, azimuth, distance,
onscreen`` (distance in CSV units, centimetres), one row per active instance per frame.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avseld.layout import CSV_COLUMNS, N_CLASSES

log = logging.getLogger(__name__)

AUDIO_DIR = {"dev": "stereo_dev", "eval": "stereo_eval"}
VIDEO_DIR = {"dev": "video_dev", "eval": "video_eval"}
META_DIR = {"dev": "metadata_dev"}
CSV_HEADER = ",".join(CSV_COLUMNS)
DEV_NAME_RE = re.compile(r"^fold(?P<fold>\d+)_room(?P<room>\d+)_mix(?P<mix>\d+)")


from avseld.errors import DataError  # noqa: E402  (re-exported)


# --------------------------------------------------------------------------------------------
# Label CSVs
# --------------------------------------------------------------------------------------------

_INT_COLS = (0, 1, 2, 5)  # frame, class, source, onscreen must be integers


def parse_label_csv_text(text: str, name: str = "<string>", *, reference: bool = False) -> np.ndarray:
    """Parse the text of a DCASE label/prediction CSV into an ``(n, 6)`` float64 array.

    frame, class, source and onscreen must be integers; azimuth and distance may be decimal
    numbers (the official reader parses them as floats). Checks: exact header, 6 columns,
    frame >= 0, class in 0..12, source >= 0, onscreen in {0, 1}, distance >= 0, finite values;
    with ``reference`` also azimuth in [-180, 180].

    Args:
        text: the CSV text.
        name: file name used in error messages.
        reference: the text is a reference (dataset label) file, which can only hold azimuths in
            [-180, 180]. Without it (a prediction) any finite azimuth is accepted, as by the
            official metric, which wraps it (``fold_azimuth``); :func:`read_label_csv` sets it.

    Raises:
        DataError: naming ``name`` and the 1-based line number.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip().replace(" ", "") != CSV_HEADER:
        got = lines[0].strip() if lines else "an empty file"
        raise DataError(f"{name}: line 1: expected header '{CSV_HEADER}', got '{got}'")
    rows: list[list[float]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        s = line.strip()
        if not s:
            continue
        parts = s.split(",")
        if len(parts) != len(CSV_COLUMNS):
            raise DataError(f"{name}: line {lineno}: expected {len(CSV_COLUMNS)} values, got {len(parts)}: '{s}'")
        vals = []
        for j, p in enumerate(parts):
            p = p.strip()
            col = CSV_COLUMNS[j]
            if j in _INT_COLS:
                try:
                    v = int(p)
                except ValueError:
                    raise DataError(f"{name}: line {lineno}: column '{col}' must be an integer, got '{p[:40]}'") from None
                if abs(v) > 2**53:  # label arrays are float64: larger integers are not exact
                    raise DataError(f"{name}: line {lineno}: column '{col}' is out of range, got '{p[:40]}'")
            else:
                try:
                    v = float(p)
                except ValueError:
                    raise DataError(f"{name}: line {lineno}: column '{col}' must be a number, got '{p}'") from None
                if not math.isfinite(v):
                    raise DataError(f"{name}: line {lineno}: column '{col}' must be finite, got '{p}'")
            vals.append(v)
        frame, cls, src, az, dist, on = vals
        if frame < 0:
            raise DataError(f"{name}: line {lineno}: frame must be >= 0, got {frame}")
        if not 0 <= cls < N_CLASSES:
            raise DataError(f"{name}: line {lineno}: class must be in 0..{N_CLASSES - 1}, got {cls}")
        if src < 0:
            raise DataError(f"{name}: line {lineno}: source must be >= 0, got {src}")
        if on not in (0, 1):
            raise DataError(f"{name}: line {lineno}: onscreen must be 0 or 1, got {on}")
        if reference and not -180.0 <= az <= 180.0:
            raise DataError(f"{name}: line {lineno}: azimuth must be in [-180, 180] degrees, got {az:g}")
        if dist < 0:
            raise DataError(f"{name}: line {lineno}: distance must be >= 0, got {dist:g}")
        rows.append(vals)
    if not rows:
        return np.zeros((0, len(CSV_COLUMNS)), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


def read_label_csv(path: str | Path, *, reference: bool = True) -> np.ndarray:
    """Read a label or prediction CSV into an ``(n, 6)`` float64 array (see :func:`parse_label_csv_text`).

    ``reference`` (default: a dataset label file) refuses azimuths outside [-180, 180]; pass
    ``reference=False`` to read a prediction CSV as the official metric does (any finite azimuth).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None
    return parse_label_csv_text(text, str(path), reference=reference)


def format_label_csv(rows: np.ndarray) -> str:
    """Format an ``(n, 6)`` label array as DCASE CSV text (azimuth and distance rounded to integers)."""
    out = [CSV_HEADER]
    rows = np.asarray(rows).reshape(-1, len(CSV_COLUMNS))
    order = np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0])) if len(rows) else []
    for r in rows[order]:
        out.append(f"{int(r[0])},{int(r[1])},{int(r[2])},{int(round(r[3]))},{int(round(r[4]))},{int(r[5])}")
    return "\n".join(out) + "\n"


def write_label_csv(path: str | Path, rows: np.ndarray) -> None:
    """Write an ``(n, 6)`` label array as a DCASE CSV, atomically."""
    from avseld.atomic import write_text_atomic

    write_text_atomic(path, format_label_csv(rows))


# --------------------------------------------------------------------------------------------
# Layout discovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipRecord:
    """One clip of the dataset: its name, split folder and files (csv is None for eval)."""

    name: str
    split: str
    wav: Path
    mp4: Path | None
    csv: Path | None

    @property
    def room(self) -> str | None:
        """``fold3_room4`` style room id from a dev name, or None for eval names."""
        m = DEV_NAME_RE.match(self.name)
        return f"fold{m['fold']}_room{m['room']}" if m else None


def list_splits(root: str | Path) -> list[str]:
    """Split folders present under ``stereo_dev/`` and ``stereo_eval/`` of a dataset root."""
    root = Path(root)
    out = []
    for kind in ("dev", "eval"):
        d = root / AUDIO_DIR[kind]
        if d.is_dir():
            out += sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    return out


def split_kind(split: str) -> str:
    """``"eval"`` for eval split folders, else ``"dev"`` (the key of :data:`AUDIO_DIR` and friends)."""
    return "eval" if split.startswith("eval") else "dev"


def discover_clips(root: str | Path, splits: list[str] | tuple[str, ...] | None = None) -> list[ClipRecord]:
    """Find every clip of the given split folders (or split-name prefixes) under ``root``.

    Args:
        root: dataset root in the DCASE 2025 layout.
        splits: split folder names or prefixes (``"dev-train"`` matches ``dev-train-tau``, ...);
            None means all splits.

    Returns:
        Clip records sorted by split then name. Missing mp4/csv files give ``None`` fields;
        :func:`avseld.validate.validate_dataset` reports them.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root does not exist")
    all_splits = list_splits(root)
    if splits is None:
        chosen = all_splits
    else:
        chosen = [s for s in all_splits if any(s == p or s.startswith(p) for p in splits)]
    clips: list[ClipRecord] = []
    for split in chosen:
        kind = split_kind(split)
        adir = root / AUDIO_DIR[kind] / split
        vdir = root / VIDEO_DIR[kind] / split
        mdir = root / META_DIR[kind] / split if kind in META_DIR else None
        for wav in sorted(adir.glob("*.wav")):
            if wav.name.startswith("."):
                continue
            name = wav.stem
            mp4 = vdir / f"{name}.mp4"
            csv = (mdir / f"{name}.csv") if mdir is not None else None
            clips.append(
                ClipRecord(
                    name=name,
                    split=split,
                    wav=wav,
                    mp4=mp4 if mp4.exists() else None,
                    csv=csv if (csv is not None and csv.exists()) else None,
                )
            )
    return clips


# --------------------------------------------------------------------------------------------
# Audio and video loading
# --------------------------------------------------------------------------------------------


def load_audio(path: str | Path, sample_rate: int = 24000, n_channels: int = 2) -> np.ndarray:
    """Read a stereo wav file as float32 samples in [-1, 1].

    A file at another sample rate is refused (never resampled silently): the features assume
    the dataset's 24 kHz, and a wrong-rate file means a wrong dataset, which the user should see.

    Args:
        path: a wav (or any libsndfile format) file.
        sample_rate: the sample rate the file must have.
        n_channels: the number of channels the file must have.

    Returns:
        ``(C, N)`` float32 array, C = ``n_channels``.

    Raises:
        DataError: naming the file, for a missing, unreadable or corrupt file, or a wrong channel
            count or sample rate.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file does not exist")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.SoundFileError) as e:  # LibsndfileError derives from RuntimeError
        raise DataError(f"{path}: cannot decode audio: {e}") from None
    if data.shape[1] != n_channels:
        raise DataError(f"{path}: expected {n_channels} audio channels, got {data.shape[1]}")
    if sr != sample_rate:
        raise DataError(f"{path}: expected sample rate {sample_rate} Hz, got {sr} Hz (resample the file first)")
    return np.ascontiguousarray(data.T)


def read_video_frames(path: str | Path, fps: float = 10.0, n_frames: int = 50, max_pad: int = 2) -> np.ndarray:
    """Sample ``n_frames`` RGB frames at ``fps`` by presentation timestamp.

    Frame k of the output is the last decoded frame whose timestamp is <= k / fps (the first
    frame if none is), whatever the video's own frame rate (29.97, 15, 30, variable ...).
    A video that ends up to ``max_pad`` sample periods early is padded by repeating its last
    frame; a clearly shorter one is an error.

    Args:
        path: an mp4 (or any container FFmpeg reads) file.
        fps: sampling rate in frames per second.
        n_frames: number of frames to return.
        max_pad: how many trailing sample times may lie past the end of the video.

    Returns:
        ``(n_frames, H, W, 3)`` uint8 array, RGB.

    Raises:
        DataError: naming the file, for a missing, undecodable, empty or too short video.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file does not exist")
    targets = np.arange(n_frames) / float(fps)
    eps = 1e-6
    out: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else float(fps)
            prev = None
            prev_t = 0.0
            n_decoded = 0
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else n_decoded / rate
                n_decoded += 1
                # every pending target strictly before this frame belongs to the previous frame
                while prev is not None and len(out) < n_frames and targets[len(out)] < t - eps:
                    out.append(prev.to_ndarray(format="rgb24"))
                if len(out) >= n_frames:
                    break
                prev, prev_t = frame, t
            if prev is None:
                raise DataError(f"{path}: no decodable video frames")
            if len(out) < n_frames:
                # the last frame covers [prev_t, prev_t + 1/rate); later targets are padding
                last = prev.to_ndarray(format="rgb24")
                end_t = prev_t + 1.0 / rate
                n_missing = int(np.sum(targets[len(out):] >= end_t - eps))
                if n_missing > max_pad:
                    raise DataError(
                        f"{path}: video too short: ends at {end_t:.2f} s, need {n_frames} frames at "
                        f"{fps:g} fps ({(n_frames - 1) / fps + 1 / fps:.2f} s)"
                    )
                while len(out) < n_frames:
                    out.append(last)
    except DataError:
        raise
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DataError(f"{path}: cannot decode video: {e}") from None
    return np.stack(out)


def probe_video(path: str | Path) -> dict:
    """Decode every frame of a video (no colour conversion) and report its geometry and duration.

    Returns:
        ``{"n_frames", "width", "height", "fps", "duration_s"}`` where ``duration_s`` is the end
        of the last frame (its timestamp plus one frame period).

    Raises:
        DataError: naming the file, for a missing or undecodable video.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            n, last_t, w, h = 0, 0.0, 0, 0
            for frame in container.decode(stream):
                last_t = frame.time if frame.time is not None else (n / rate if rate else 0.0)
                w, h = frame.width, frame.height
                n += 1
    except DataError:
        raise
    except (av.FFmpegError, ValueError, OSError) as e:
        raise DataError(f"{path}: cannot decode video: {e}") from None
    if n == 0:
        raise DataError(f"{path}: no decodable video frames")
    return {"n_frames": n, "width": w, "height": h, "fps": rate, "duration_s": last_t + (1.0 / rate if rate else 0.0)}
