"""Dataset validation: every problem of a DCASE 2025 layout root (real or synthetic), one line each,
naming the file (and CSV line), plus the label summary of :mod:`avseld.stats` (``avseld validate-data``).

Checks what SPEC section 2 fixes: matching wav / mp4 / csv names, stereo 24-kHz audio of the clip
length, videos of that length, well-formed label CSVs, fold3 train and fold4 test names, disjoint rooms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avseld.dataset import (
    AUDIO_DIR,
    CSV_HEADER,
    DEV_NAME_RE,
    META_DIR,
    VIDEO_DIR,
    ClipRecord,
    discover_clips,
    list_splits,
    load_audio,
    parse_label_csv_text,
    probe_video,
    split_kind,
)
from avseld.errors import DataError
from avseld.layout import CSV_COLUMNS, LABEL_HOP_S
from avseld.stats import format_summary, summarise_labels


@dataclass
class ValidationReport:
    """What :func:`validate_dataset` found: every problem (one line each) and the label summary."""

    root: Path
    problems: list[str]
    summary: dict

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """The summary, then every problem (what ``avseld validate-data`` prints)."""
        lines = [f"dataset: {self.root}", format_summary(self.summary)]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def _csv_problems(path: Path, n_frames: int) -> tuple[list[str], np.ndarray | None]:
    """Every bad line of a label CSV (not just the first), plus the parsed rows when all are good."""
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return [f"{path}: not a readable text CSV file"], None
    lines = text.splitlines()
    try:
        parse_label_csv_text(lines[0] if lines else "", str(path), reference=True)
    except DataError as e:
        return [str(e)], None
    problems = []
    rows = []
    seen: dict[tuple[int, int, int], int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            r = parse_label_csv_text(CSV_HEADER + "\n" + line, str(path), reference=True)
        except DataError as e:
            problems.append(str(e).replace(f"{path}: line 2:", f"{path}: line {lineno}:", 1))
            continue
        if len(r) == 0:
            continue
        frame, cls, src, az = int(r[0, 0]), int(r[0, 1]), int(r[0, 2]), r[0, 3]
        if frame >= n_frames:
            problems.append(f"{path}: line {lineno}: frame must be < {n_frames}, got {frame}")
        if not -90.0 <= az <= 90.0:
            problems.append(f"{path}: line {lineno}: reference azimuth must be folded to [-90, 90], got {az:g}")
        key = (frame, cls, src)
        if key in seen:
            problems.append(f"{path}: line {lineno}: duplicate frame/class/source {key} (first on line {seen[key]})")
        seen[key] = lineno
        rows.append(r[0])
    if problems:
        return problems, None
    return [], (np.asarray(rows) if rows else np.zeros((0, len(CSV_COLUMNS))))


def _check_clip(clip: ClipRecord, sample_rate: int, duration_s: float, n_frames: int, check_video: bool) -> tuple[list[str], np.ndarray | None]:
    import soundfile as sf

    problems: list[str] = []
    n_expected = int(round(duration_s * sample_rate))
    try:
        info = sf.info(str(clip.wav))
        if info.channels != 2:
            problems.append(f"{clip.wav}: expected 2 audio channels, got {info.channels}")
        if info.samplerate != sample_rate:
            problems.append(f"{clip.wav}: expected sample rate {sample_rate} Hz, got {info.samplerate} Hz")
        if info.frames != n_expected:
            problems.append(f"{clip.wav}: expected {n_expected} samples ({duration_s:g} s), got {info.frames}")
        if not problems:
            load_audio(clip.wav, sample_rate)  # the whole file must decode
    except (RuntimeError, sf.SoundFileError) as e:
        problems.append(f"{clip.wav}: cannot decode audio: {str(e).splitlines()[0]}")
    except DataError as e:
        problems.append(str(e))
    if clip.mp4 is None:
        problems.append(f"{clip.wav}: no matching video {clip.name}.mp4 in the {clip.split} video folder")
    elif check_video:
        try:
            v = probe_video(clip.mp4)
            if v["duration_s"] < duration_s - 0.2:
                problems.append(f"{clip.mp4}: video lasts {v['duration_s']:.2f} s, expected {duration_s:g} s")
            elif v["duration_s"] > duration_s + 0.5:
                problems.append(f"{clip.mp4}: video lasts {v['duration_s']:.2f} s, longer than {duration_s:g} s")
        except DataError as e:
            problems.append(str(e))
    rows = None
    if split_kind(clip.split) == "dev":
        if clip.csv is None:
            problems.append(f"{clip.wav}: no matching label file {clip.name}.csv in the {clip.split} metadata folder")
        else:
            csv_problems, rows = _csv_problems(clip.csv, n_frames)
            problems += csv_problems
        m = DEV_NAME_RE.match(clip.name)
        if m is None:
            problems.append(f"{clip.wav}: dev clip name does not match fold<F>_room<R>_mix<M>...")
        elif clip.split.startswith("dev-train") and m["fold"] == "4" or clip.split.startswith("dev-test") and m["fold"] == "3":
            problems.append(f"{clip.wav}: fold{m['fold']} clip in split {clip.split}")
    return problems, rows


def validate_dataset(
    root: str | Path,
    splits: list[str] | tuple[str, ...] | None = None,
    sample_rate: int = 24000,
    duration_s: float = 5.0,
    check_video: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Check every clip of a DCASE 2025 layout root (real or synthetic) and summarise its labels.

    Checks: split folders exist and are not empty; every wav has a matching mp4 (and CSV for dev
    splits) and every mp4/CSV a matching wav; audio is decodable, stereo, at ``sample_rate`` and
    exactly ``duration_s`` long; video decodes and lasts ``duration_s`` (within a frame or two);
    CSVs have the header, integer/number columns, values in range, folded azimuths, frames below
    the clip's frame count and no duplicate rows; dev names follow ``fold<F>_room<R>_mix<M>``
    with fold 3 in train and fold 4 in test splits; train and test rooms are disjoint.

    Returns:
        A :class:`ValidationReport`; ``report.problems`` lists every problem, one line each,
        naming the file (and CSV line). Never raises for bad clips; raises :class:`DataError`
        only when ``root`` itself is missing.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root does not exist")
    problems: list[str] = []
    all_splits = list_splits(root)
    if not all_splits:
        problems.append(f"{root}: no split folders under {AUDIO_DIR['dev']}/ or {AUDIO_DIR['eval']}/")
    chosen = all_splits if splits is None else [s for s in all_splits if any(s == p or s.startswith(p) for p in splits)]
    # orphan files and empty folders
    for split in chosen:
        kind = split_kind(split)
        wav_names = {p.stem for p in (root / AUDIO_DIR[kind] / split).glob("*.wav")}
        if not wav_names:
            problems.append(f"{root / AUDIO_DIR[kind] / split}: split folder has no wav files")
        companions = [(VIDEO_DIR[kind], "mp4", "video")]
        if kind in META_DIR:
            companions.append((META_DIR[kind], "csv", "metadata"))
        for folder, ext, what in companions:  # every mp4 / csv must pair with a wav of the same name
            d = root / folder / split
            if not d.is_dir():
                problems.append(f"{d}: {what} folder missing for split {split}")
                continue
            for p in sorted(d.glob(f"*.{ext}")):
                if p.stem not in wav_names:
                    problems.append(f"{p}: no matching audio {p.stem}.wav in {AUDIO_DIR[kind]}/{split}")
    clips = discover_clips(root, chosen) if chosen else []
    n_frames = int(round(duration_s / LABEL_HOP_S))
    labels: dict[str, np.ndarray] = {}
    for clip in tqdm(clips, desc="validate", unit="clip", disable=not progress):
        clip_problems, rows = _check_clip(clip, sample_rate, duration_s, n_frames, check_video)
        problems += clip_problems
        if rows is not None:
            labels[f"{clip.split}/{clip.name}"] = rows
    train_rooms = {c.room for c in clips if c.split.startswith("dev-train") and c.room}
    test_rooms = {c.room for c in clips if c.split.startswith("dev-test") and c.room}
    shared = {r.split("_", 1)[1] for r in train_rooms} & {r.split("_", 1)[1] for r in test_rooms}
    if shared:
        problems.append(f"{root}: rooms present in both dev-train and dev-test splits: {', '.join(sorted(shared))}")
    per_split: dict[str, int] = {}
    for c in clips:
        per_split[c.split] = per_split.get(c.split, 0) + 1
    by_split: dict[str, dict[str, np.ndarray]] = {}
    for key, rows in labels.items():
        split, name = key.split("/", 1)
        by_split.setdefault(split, {})[name] = rows
    summary = summarise_labels(by_split, per_split, n_frames)
    return ValidationReport(root=root, problems=problems, summary=summary)
