"""Tiny training fixtures made in code: clips whose features carry their labels, written as a cache.

Each clip holds a few static events. The "log-mel" of an event raises the 4 mel bands of its class
in both channels with levels from a coincident left/right pair: left ~ (1 + sin az) / d, right ~
(1 - sin az) / d, so class, direction and distance are recoverable from the features, as in a real
stereo recording. The cache folder is written in the layout of ``avseld.cache`` (``meta.json`` last);
reference CSVs go to ``<data_root>/metadata_dev/<split>/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avseld.cache import feature_cache_dir
from avseld.config import Config, load_config
from avseld.dataset import write_label_csv
from avseld.labels import encode_adpit
from avseld.layout import N_CLASSES

N_STFT = 251
N_MELS = 64


def make_rows(rng: np.random.Generator, n_events: int = 2, classes: list[int] | None = None) -> np.ndarray:
    """Label rows (frame, class, source, azimuth, distance cm, onscreen) of static events."""
    rows = []
    if classes is None:
        classes = rng.choice(N_CLASSES, size=n_events, replace=False)
    for src, k in enumerate(classes):
        start = int(rng.integers(0, 10))
        stop = int(rng.integers(35, 46))
        az = int(rng.integers(-80, 81))
        dist = int(rng.integers(100, 300))
        on = int(abs(az) < 50)
        rows += [(f, int(k), src, az, dist, on) for f in range(start, stop)]
    return np.asarray(rows, dtype=np.float64)


def render(rows: np.ndarray, rng: np.random.Generator, visual_shape: tuple[int, ...] = (9,)) -> tuple[np.ndarray, np.ndarray]:
    """Audio features (2, 251, 64) and visual features (50, *visual_shape) of one clip."""
    audio = rng.normal(0.0, 0.05, size=(2, N_STFT, N_MELS)).astype(np.float32)
    video = rng.normal(0.0, 0.1, size=(50, *visual_shape)).astype(np.float32)
    for f, k, _, az, dist, on in rows:
        f, k = int(f), int(k)
        s = np.sin(np.deg2rad(az))
        level = 2.0 / (dist / 100.0)
        bands = slice(4 * k + 2, 4 * k + 6)
        frames = slice(5 * f, 5 * f + 5)
        audio[0, frames, bands] += level * (1 + s) / 2
        audio[1, frames, bands] += level * (1 - s) / 2
        if on:
            video[f].reshape(-1)[int((az + 90) / 180 * (video[f].size - 1))] += 1.0
    return audio, video


def write_split(cache_dir: Path, split: str, names: list[str], rooms: list[str | None], audio: np.ndarray,
                video: np.ndarray, rows: list[np.ndarray] | None) -> None:
    """One cached split in the ``avseld.cache`` layout."""
    d = cache_dir / split
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "audio.npy", audio.astype(np.float32))
    np.save(d / "video.npy", video.astype(np.float32))
    labelled = rows is not None
    if labelled:
        np.save(d / "targets.npy", np.stack([encode_adpit(r) for r in rows]).astype(np.float32))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        np.save(d / "labels.npy", np.concatenate(rows) if rows else np.zeros((0, 6)))
        np.save(d / "label_offsets.npy", offsets)
    meta = {"split": split, "names": names, "rooms": rooms, "n_clips": len(names), "labelled": labelled,
            "audio_shape": list(audio.shape[1:]), "video_shape": list(video.shape[1:])}
    (d / "meta.json").write_text(json.dumps(meta))


def make_dataset(tmp: Path, n_train_rooms: int = 3, clips_per_room: int = 4, n_test: int = 4, copies: int = 1,
                 visual_shape: tuple[int, ...] = (9,), seed: int = 0, test_is_train: bool = False,
                 overrides: dict | None = None) -> tuple[Config, Path, Path]:
    """A fake dataset root (reference CSVs only) and its feature cache.

    Args:
        tmp: folder to write into.
        copies: each training clip is repeated this many times (as different rows) in the cache.
        test_is_train: the dev-test split holds the training clips themselves (for overfitting).
        overrides: config overrides on top of the smoke profile.

    Returns:
        (config, data_root, cache_root).
    """
    rng = np.random.default_rng(seed)
    cfg = load_config("smoke", {"train.tensorboard": False, "train.device": "cpu", **(overrides or {})})
    data_root, cache_root = tmp / "data", tmp / "cache"
    cache_dir = feature_cache_dir(cfg, cache_root)
    names, rooms, rows, audio, video = [], [], [], [], []
    n_clips = n_train_rooms * clips_per_room
    all_classes = [list(range(N_CLASSES))[i::n_clips] for i in range(n_clips)]  # every class occurs
    for r in range(1, n_train_rooms + 1):
        for m in range(clips_per_room):
            name = f"fold3_room{r}_mix{m:03d}"
            rr = make_rows(rng, classes=all_classes[len(names)] or None)
            a, v = render(rr, rng, visual_shape)
            names.append(name), rooms.append(f"fold3_room{r}"), rows.append(rr), audio.append(a), video.append(v)
    train_names = [f"{n}_c{c}" if copies > 1 else n for c in range(copies) for n in names]
    write_split(cache_dir, "dev-train-fake", train_names, rooms * copies, np.stack(audio * copies),
                np.stack(video * copies), rows * copies)
    if test_is_train:
        t_names, t_rows, t_audio, t_video = names, rows, audio, video
    else:
        t_names, t_rows, t_audio, t_video = [], [], [], []
        for m in range(n_test):
            rr = make_rows(rng)
            a, v = render(rr, rng, visual_shape)
            t_names.append(f"fold4_room9_mix{m:03d}"), t_rows.append(rr), t_audio.append(a), t_video.append(v)
    write_split(cache_dir, "dev-test-fake", t_names, [None] * len(t_names), np.stack(t_audio), np.stack(t_video), t_rows)
    for n, r in zip(t_names, t_rows):
        write_label_csv(data_root / "metadata_dev" / "dev-test-fake" / f"{n}.csv", r)
    return cfg, data_root, cache_root
