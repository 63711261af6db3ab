"""Feature cache: audio and visual features, ADPIT targets and label arrays of every clip, written
once per feature configuration and loaded as memory-mapped arrays (one read per split).

Layout (lhotse-style: the cache says how it was made)::

    <cache_root>/<feature_key(cfg)>/     hash of the features section and the feature and label code versions
        feature_config.yaml            the resolved ``features:`` section that made the cache
        fullview_projection.npy        full-view mode only: the fixed channel projection
        <split>/audio.npy              (N, C, T, F) float32 log-mel (+ extra channels)
        <split>/video.npy              (N, 50, *visual_shape) float32
        <split>/targets.npy            (N, 50, 6, 5, 13) float32 ADPIT targets (labelled splits)
        <split>/labels.npy             (R, 6) float64 label rows of all clips, concatenated
        <split>/label_offsets.npy      (N + 1,) int64: clip i owns rows [off[i], off[i + 1])
        <split>/meta.json              names, rooms, shapes, source fingerprint; written LAST
        .partial/<split>-<fp>/<clip>.npz   per-clip shards while a split is being built

Every file is written to a temporary name and renamed (``avseld.atomic``). A split is complete
exactly when its ``meta.json`` exists and matches the current source files; per-clip shards are
renamed into place only when whole, so a killed run resumes from the shards it finished and a rerun
gives arrays identical to an uninterrupted run. Everything loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from avseld.atomic import atomic_path, save_atomic, write_json_atomic, write_text_atomic
from avseld.errors import ConfigError, DataError
from avseld.layout import CSV_COLUMNS, N_ADPIT_SLOTS, N_CLASSES, N_LABEL_FRAMES, N_TARGET_FIELDS

log = logging.getLogger(__name__)

META = "meta.json"
PARTIAL = ".partial"
PROJECTION = "fullview_projection.npy"
CACHE_FORMAT = 1


@dataclass
class SplitArrays:
    """The cached arrays of one split (memory-mapped where they are large).

    Attributes:
        split: split folder name (or the prefix several folders were loaded under).
        names: clip names, in array order.
        rooms: ``fold3_room2`` style room of each clip (None for eval names).
        audio: ``(N, C, T, F)`` float32.
        video: ``(N, 50, *visual_shape)`` float32.
        targets: ``(N, 50, 6, 5, 13)`` float32, or None for unlabelled (eval) splits.
        labels: clip name -> ``(n_rows, 6)`` label array, or None for unlabelled splits.
        meta: the split's ``meta.json`` content.
    """

    split: str
    names: list[str]
    rooms: list[str | None]
    audio: np.ndarray
    video: np.ndarray
    targets: np.ndarray | None
    labels: dict[str, np.ndarray] | None
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.names)


# Bump when the extraction code changes the cached values of an unchanged ``features`` config, so
# that caches (and the runs trained on them) made by older code are not reused.
# 2: frames are resized in uint8 like the official OpenCV + PIL recipe (1: rounded float resizes).
FEATURE_CODE_VERSION = 2

# Bump when the label code changes the cached ``targets.npy`` / ``labels.npy`` of unchanged label
# CSVs: CSV reading (``avseld.dataset.read_label_csv``), ADPIT encoding (``avseld.labels.encode_adpit``)
# or the frame and slot counts of ``avseld.layout``. tests/test_cache.py holds a digest of what the
# current code encodes and fails, asking for a bump, when it changes. No config setting changes the
# targets (they always cover ``N_LABEL_FRAMES`` frames), so the version is the whole label part of the key.
# Version 1 is the label code every key was made with before this constant existed: it adds nothing
# to the key, so those caches (and the run ids made from their keys) stay valid; later versions do.
LABEL_CODE_VERSION = 1


def code_tag() -> str:
    """The code versions that the cache key covers besides the config, e.g. ``features-code-v2``
    (``|labels-code-v<N>`` appended from label code version 2 on)."""
    tag = f"features-code-v{FEATURE_CODE_VERSION}"
    return tag if LABEL_CODE_VERSION == 1 else f"{tag}|labels-code-v{LABEL_CODE_VERSION}"


def feature_key(cfg: Any) -> str:
    """Cache key: a 12-hex hash of everything that determines what a cache holds: the ``features``
    section (audio and video features) and :func:`code_tag` (:data:`FEATURE_CODE_VERSION` for the
    extraction code, :data:`LABEL_CODE_VERSION` for the targets and label rows)."""
    blob = f"{cfg.section_hash('features')}|{code_tag()}"
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def feature_cache_dir(cfg: Any, cache_root: str | Path) -> Path:
    """``<cache_root>/<feature_key(cfg)>``."""
    return Path(cache_root) / feature_key(cfg)


def _fingerprint(clips: list[Any]) -> str:
    """Hash of the clip names and the size and mtime of their files (detects a changed dataset)."""
    h = hashlib.sha256()
    for c in clips:
        h.update(c.name.encode())
        for p in (c.wav, c.mp4, c.csv):
            if p is None:
                h.update(b"-")
            else:
                st = Path(p).stat()
                h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _read_meta(split_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((split_dir / META).read_text())
    except (OSError, ValueError):
        return None


def list_cached_splits(cache_dir: str | Path) -> list[str]:
    """Names of the complete splits of a cache directory."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    return sorted(p.name for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / META).is_file())


def missing_splits(cache_dir: str | Path, prefixes: list[str] | tuple[str, ...]) -> list[str]:
    """The split prefixes (``"dev-train"``, ``"dev-test-synth"``, ...) no complete cached split starts with."""
    have = list_cached_splits(cache_dir)
    return [p for p in prefixes if not any(s.startswith(p) for s in have)]


def _write_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, arr, allow_pickle=False)


def _load_shard(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class _ClipWorker:
    """Extracts one clip's features: ``(audio (C, T, F), video (50, ...), labels (n, 6) | None)``."""

    def __init__(self, fc: Any, projection: np.ndarray | None, weights: Any) -> None:
        from avseld.features import build_visual_extractor

        self.fc = fc
        self.visual = build_visual_extractor(fc, projection=projection, weights=weights)

    @staticmethod
    def load(clip: Any, fc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Decode the clip's wav, mp4 and csv (runs in a prefetch thread)."""
        from avseld.dataset import load_audio, read_label_csv, read_video_frames

        if clip.mp4 is None:
            raise DataError(f"{clip.wav}: clip '{clip.name}' has no video file in the matching video folder")
        audio = load_audio(clip.wav, sample_rate=fc.sample_rate)
        frames = read_video_frames(clip.mp4, fps=fc.video_fps, n_frames=N_LABEL_FRAMES)
        rows = read_label_csv(clip.csv) if clip.csv is not None else None
        return audio, frames, rows

    def features(self, audio: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from avseld.features import extract_audio_features

        fc = self.fc
        a = extract_audio_features(
            audio, fc.audio_extra, fc.sample_rate, fc.n_fft, fc.win_length, fc.hop_length, fc.n_mels
        )
        return np.ascontiguousarray(a, dtype=np.float32), self.visual(frames).astype(np.float32)

    def write_shard(self, clip: Any, loaded: tuple[np.ndarray, np.ndarray, np.ndarray | None], shard_dir: Path) -> None:
        """Extract a loaded clip and write ``<shard_dir>/<clip>.npz`` (temporary name, then rename)."""
        audio, frames, rows = loaded
        a, v = self.features(audio, frames)
        arrays = {"audio": a, "video": v}
        if rows is not None:
            arrays["labels"] = rows.astype(np.float64)
        with atomic_path(shard_dir / f"{clip.name}.npz") as tmp:
            np.savez(tmp, **arrays)


def _projection(cache_dir: Path, fc: Any) -> np.ndarray | None:
    if fc.visual_mode != "fullview":
        return None
    from avseld.features import fullview_projection
    from avseld.features.visual import STAGE_CHANNELS, map_stride

    path = cache_dir / PROJECTION
    if path.is_file():
        return np.load(path, allow_pickle=False)
    proj = fullview_projection(STAGE_CHANNELS[fc.backbone, map_stride(fc)], fc.fullview_dim, fc.fullview_seed)
    _write_npy(path, proj)
    return proj


def _build_shards(clips: list[Any], shard_dir: Path, get_worker: Any, fc: Any, split: str,
                  get_pool: Any = None) -> None:
    """Write one ``<clip>.npz`` shard per clip not yet extracted (atomically: whole or absent).

    ``get_pool`` (returning a process pool set up by :func:`_init_process`) spreads the clips over
    its workers, one clip per task; None extracts in this process, decoding the next clip in a
    thread while the backbone runs on the current one.
    """
    from tqdm.auto import tqdm  # a widget bar inside a notebook, a terminal bar on the command line

    shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in shard_dir.glob(".*.tmp.*"):  # temp files of a killed run
        stale.unlink(missing_ok=True)
    todo = [c for c in clips if not (shard_dir / f"{c.name}.npz").is_file()]
    if len(todo) < len(clips):
        log.info("%s: %d of %d clips already extracted, resuming", split, len(clips) - len(todo), len(clips))
    if not todo:
        return
    bar = tqdm(total=len(clips), initial=len(clips) - len(todo), desc=f"features {split}", unit="clip")
    with bar:
        if get_pool is not None and len(todo) > 1:
            _extract_in_pool(get_pool(), todo, shard_dir, bar)
            return
        worker = get_worker()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_ClipWorker.load, todo[0], fc)
            for i, clip in enumerate(todo):
                loaded = pending.result()
                if i + 1 < len(todo):
                    pending = pool.submit(_ClipWorker.load, todo[i + 1], fc)
                worker.write_shard(clip, loaded, shard_dir)
                bar.update(1)


_PROCESS_WORKER: _ClipWorker | None = None  # the backbone of a pool process, loaded once by _init_process


def _init_process(fc: Any, projection: np.ndarray | None, weights: Any, threads: int) -> None:
    import torch

    global _PROCESS_WORKER
    torch.set_num_threads(threads)
    _PROCESS_WORKER = _ClipWorker(fc, projection, weights)


def _extract_one(clip: Any, shard_dir: Path) -> str:
    assert _PROCESS_WORKER is not None
    _PROCESS_WORKER.write_shard(clip, _ClipWorker.load(clip, _PROCESS_WORKER.fc), shard_dir)
    return clip.name


def _extract_in_pool(pool: Any, todo: list[Any], shard_dir: Path, bar: Any) -> None:
    """Extract ``todo`` in the pool's processes; the first error cancels the rest and is raised."""
    from concurrent.futures import as_completed

    futures = [pool.submit(_extract_one, clip, shard_dir) for clip in todo]
    try:
        for f in as_completed(futures):  # the progress bar moves clip by clip
            f.result()  # re-raises a worker's DataError / ConfigError as is
            bar.update(1)
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _consolidate(clips: list[Any], shard_dir: Path, split_dir: Path, meta: dict[str, Any], labelled: bool) -> None:
    """Stack the shards of a split into memory-mappable arrays; ``meta.json`` goes last."""
    from avseld.labels import encode_adpit

    first = _load_shard(shard_dir / f"{clips[0].name}.npz")
    n = len(clips)
    a_shape, v_shape = first["audio"].shape, first["video"].shape
    split_dir.mkdir(parents=True, exist_ok=True)
    label_rows: list[np.ndarray] = []
    with atomic_path(split_dir / "audio.npy") as ta, atomic_path(split_dir / "video.npy") as tv:
        audio = np.lib.format.open_memmap(ta, mode="w+", dtype=np.float32, shape=(n, *a_shape))
        video = np.lib.format.open_memmap(tv, mode="w+", dtype=np.float32, shape=(n, *v_shape))
        for i, clip in enumerate(clips):
            s = first if i == 0 else _load_shard(shard_dir / f"{clip.name}.npz")
            if s["audio"].shape != a_shape or s["video"].shape != v_shape:
                raise DataError(
                    f"{clip.wav}: features of shape {s['audio'].shape} / {s['video'].shape} differ from the "
                    f"split's first clip {clips[0].name} ({a_shape} / {v_shape}); clips must have equal lengths"
                )
            audio[i], video[i] = s["audio"], s["video"]
            if labelled:
                label_rows.append(s["labels"].reshape(-1, len(CSV_COLUMNS)))
        audio.flush()
        video.flush()
        del audio, video
    if labelled:
        with atomic_path(split_dir / "targets.npy") as tt:
            shape = (n, N_LABEL_FRAMES, N_ADPIT_SLOTS, N_TARGET_FIELDS, N_CLASSES)
            targets = np.lib.format.open_memmap(tt, mode="w+", dtype=np.float32, shape=shape)
            for i, rows in enumerate(label_rows):
                targets[i] = encode_adpit(rows, N_LABEL_FRAMES)
            targets.flush()
            del targets
        offsets = np.zeros(n + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in label_rows])
        _write_npy(split_dir / "labels.npy", np.concatenate(label_rows) if label_rows else np.zeros((0, len(CSV_COLUMNS))))
        _write_npy(split_dir / "label_offsets.npy", offsets)
    else:
        for name in ("targets.npy", "labels.npy", "label_offsets.npy"):
            (split_dir / name).unlink(missing_ok=True)
    meta.update(audio_shape=list(a_shape), video_shape=list(v_shape))
    write_json_atomic(split_dir / META, meta)


def build_feature_cache(
    cfg: Any,
    data_root: str | Path,
    cache_root: str | Path,
    splits: list[str] | tuple[str, ...] | None = None,
    weights: Any = "auto",
    n_workers: int = 1,
    threads_per_worker: int = 0,
) -> Path:
    """Extract and cache the features of every clip of ``data_root`` (or of ``splits``).

    Re-running skips complete splits and finished clips; a split whose source files changed
    (names, sizes or modification times) is rebuilt. The worker count is a resource choice, not a
    feature setting: it is not part of the cache key (whole-machine throughput of 1 and 2 workers:
    ``benchmarks/results/features.md``).

    Args:
        cfg: the study :class:`~avseld.config.Config` (only ``cfg.features`` matters).
        data_root: dataset root in the DCASE 2025 layout.
        cache_root: folder holding one sub-folder per feature configuration.
        splits: split folder names or prefixes; None means all.
        weights: ``"auto"`` (offline ImageNet weights) or None (random backbone; tests only).
        n_workers: extraction processes (spawned; one clip per task); 1 extracts in this process.
        threads_per_worker: torch threads of each worker process; 0 = CPU cores // n_workers.

    Returns:
        The cache directory ``<cache_root>/<feature_key(cfg)>``.

    Raises:
        DataError: no clips, a missing video or labels, an undecodable file (naming it).
        ConfigError: missing backbone weights (saying where to put them).
    """
    from avseld.dataset import discover_clips

    if n_workers < 1 or threads_per_worker < 0:
        raise ConfigError(f"feature extraction needs n_workers >= 1 and threads_per_worker >= 0, "
                          f"got {n_workers} and {threads_per_worker}")
    cache_dir = feature_cache_dir(cfg, cache_root)
    clips = discover_clips(data_root, splits)
    if not clips:
        raise DataError(f"{data_root}: no clips found" + (f" for splits {list(splits)}" if splits else ""))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_dir / ".lock"):  # a second process building the same cache waits, then skips
        return _build_locked(cfg, cache_dir, clips, weights, n_workers, threads_per_worker)


def ensure_feature_cache(cfg: Any, data_root: str | Path, cache_root: str | Path,
                         need: list[str] | tuple[str, ...] | None = None, **build: Any) -> Path:
    """The feature cache of ``cfg``, built (or finished) from ``data_root`` when it is not complete: the
    one entry point of the engine and the study.

    Args:
        need: split prefixes the caller reads; when each has a complete cached split the cache is used
            as it is. None: :func:`build_feature_cache` checks every split against its source files.
        build: keyword arguments of :func:`build_feature_cache` (``n_workers``, ...).
    """
    cache_dir = feature_cache_dir(cfg, cache_root)
    if need is not None:
        missing = missing_splits(cache_dir, need)
        if not missing:
            return cache_dir
        log.info("feature cache %s lacks %s: extracting features from %s", cache_dir, ", ".join(missing), data_root)
    return Path(build_feature_cache(cfg, data_root, cache_root, **build))


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (``fcntl.flock``) on ``lock_path``; released when the process dies."""
    import fcntl

    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_locked(cfg: Any, cache_dir: Path, clips: list[Any], weights: Any, n_workers: int, threads: int) -> Path:
    import os

    fc = cfg.features
    feat_yaml = yaml.safe_dump({"features": cfg.to_dict()["features"]}, sort_keys=False)
    if not (cache_dir / "feature_config.yaml").is_file():
        write_text_atomic(cache_dir / "feature_config.yaml", feat_yaml)
    projection = _projection(cache_dir, fc)
    by_split: dict[str, list[Any]] = {}
    for c in clips:
        by_split.setdefault(c.split, []).append(c)

    worker: list[_ClipWorker] = []

    def get_worker() -> _ClipWorker:  # the backbone is loaded only when some clip needs it
        if not worker:
            worker.append(_ClipWorker(fc, projection, weights))
        return worker[0]

    with ExitStack() as stack:
        pools: list[Any] = []

        def get_pool() -> Any:  # one pool for every split, started only when some clip needs it
            if not pools:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                initargs = (fc, projection, weights, threads or max(1, (os.cpu_count() or 1) // n_workers))
                pools.append(stack.enter_context(ProcessPoolExecutor(
                    max_workers=n_workers, mp_context=mp.get_context("spawn"), initializer=_init_process,
                    initargs=initargs)))
            return pools[0]

        for split, split_clips in by_split.items():
            _build_split(cache_dir, split, split_clips, fc, get_worker, get_pool if n_workers > 1 else None)
    return cache_dir


def _build_split(cache_dir: Path, split: str, split_clips: list[Any], fc: Any, get_worker: Any, get_pool: Any) -> None:
    from avseld.features import audio_channel_names, visual_feature_shape

    with_csv = [c for c in split_clips if c.csv is not None]
    if with_csv and len(with_csv) != len(split_clips):
        missing = next(c for c in split_clips if c.csv is None)
        raise DataError(f"{missing.wav}: clip '{missing.name}' of labelled split '{split}' has no label CSV")
    labelled = bool(with_csv)
    fp = _fingerprint(split_clips)
    split_dir = cache_dir / split
    meta = _read_meta(split_dir)
    if meta is not None and meta.get("fingerprint") == fp and meta.get("format") == CACHE_FORMAT:
        log.info("%s: cached (%d clips)", split, meta["n_clips"])
        for left in (cache_dir / PARTIAL).glob(f"{split}-{'?' * 16}"):  # a run killed after meta.json
            shutil.rmtree(left, ignore_errors=True)
        return
    if meta is not None:
        log.warning("%s: source files changed since the cache was written; rebuilding", split)
        (split_dir / META).unlink()
    for old in (cache_dir / PARTIAL).glob(f"{split}-{'?' * 16}"):
        if old.name != f"{split}-{fp}":
            shutil.rmtree(old, ignore_errors=True)
    shard_dir = cache_dir / PARTIAL / f"{split}-{fp}"
    _build_shards(split_clips, shard_dir, get_worker, fc, split, get_pool)
    meta = {
        "format": CACHE_FORMAT,
        "split": split,
        "n_clips": len(split_clips),
        "names": [c.name for c in split_clips],
        "rooms": [c.room for c in split_clips],
        "labelled": labelled,
        "fingerprint": fp,
        "feature_hash": cache_dir.name,
        "audio_channels": list(audio_channel_names(fc.audio_extra)),
        "visual_shape": list(visual_feature_shape(fc)),
    }
    _consolidate(split_clips, shard_dir, split_dir, meta, labelled)
    shutil.rmtree(shard_dir, ignore_errors=True)
    log.info("%s: %d clips cached in %s", split, len(split_clips), split_dir)


def _load_one(cache_dir: Path, split: str, mmap: bool = True) -> SplitArrays:
    d = cache_dir / split
    meta = _read_meta(d)
    if meta is None:
        raise DataError(f"{d}: not a complete cached split (no {META}); run `avseld features` first")
    mode = "r" if mmap else None
    audio = np.load(d / "audio.npy", mmap_mode=mode, allow_pickle=False)
    video = np.load(d / "video.npy", mmap_mode=mode, allow_pickle=False)
    targets = labels = None
    if meta["labelled"]:
        targets = np.load(d / "targets.npy", mmap_mode=mode, allow_pickle=False)
        rows = np.load(d / "labels.npy", allow_pickle=False)
        off = np.load(d / "label_offsets.npy", allow_pickle=False)
        labels = {name: rows[off[i] : off[i + 1]] for i, name in enumerate(meta["names"])}
    if len(audio) != meta["n_clips"] or len(video) != meta["n_clips"]:
        raise DataError(f"{d}: arrays hold {len(audio)} / {len(video)} clips, {META} says {meta['n_clips']}")
    return SplitArrays(split, list(meta["names"]), list(meta["rooms"]), audio, video, targets, labels, meta)


def load_split(cache_dir: str | Path, split: str) -> SplitArrays:
    """Load a cached split: one memory-mapped read of each array.

    Args:
        cache_dir: a directory returned by :func:`build_feature_cache`.
        split: a split folder name (memory-mapped), or a prefix such as ``"dev-train"`` matching
            several folders (then concatenated in memory, in name order).

    Raises:
        DataError: when no complete cached split matches.
    """
    cache_dir = Path(cache_dir)
    available = list_cached_splits(cache_dir)
    if split in available:
        return _load_one(cache_dir, split)
    chosen = [s for s in available if s.startswith(split)]
    if not chosen:
        raise DataError(f"{cache_dir}: no cached split matches '{split}' (cached: {', '.join(available) or 'none'})")
    if len(chosen) == 1:
        return _load_one(cache_dir, chosen[0])
    parts = [_load_one(cache_dir, s) for s in chosen]
    labelled = all(p.targets is not None for p in parts)
    if not labelled and any(p.targets is not None for p in parts):
        raise DataError(f"{cache_dir}: '{split}' mixes labelled and unlabelled splits ({', '.join(chosen)})")
    return SplitArrays(
        split=split,
        names=[n for p in parts for n in p.names],
        rooms=[r for p in parts for r in p.rooms],
        audio=np.concatenate([p.audio for p in parts]),
        video=np.concatenate([p.video for p in parts]),
        targets=np.concatenate([p.targets for p in parts]) if labelled else None,
        labels={k: v for p in parts for k, v in p.labels.items()} if labelled else None,
        meta={"split": split, "parts": [p.meta for p in parts]},
    )


def audio_stats(cache_dir: str | Path, prefixes: tuple[str, ...] | list[str],
                level_difference: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of every audio feature (channel, mel band) over the cached splits
    matching ``prefixes`` (the training splits), over clips and time frames.

    Computed in float64 once and stored beside the splits (``audio_stats_<prefixes>.npz``, written
    atomically); a later call reads the file. The arrays are what :class:`avseld.models.blocks.ConvEncoder`
    standardises its input with (``train.standardize``).

    Args:
        level_difference: also the statistics of the channel-0-minus-channel-1 difference, appended
            as a last channel (what ``ConvEncoder(level_difference=True)`` feeds its first layer).

    Returns:
        ``(mean, std)``, each (C, F) float32 (C + 1 with ``level_difference``); ``std`` is floored at
        1e-3 of its median.
    """
    cache_dir = Path(cache_dir)
    splits = [s for s in list_cached_splits(cache_dir) if any(s.startswith(p) for p in prefixes)]
    if not splits:
        raise DataError(f"{cache_dir}: no cached split matches {list(prefixes)} for the audio statistics")
    path = cache_dir / f"audio_stats_{'+'.join(sorted(splits))}{'_ld' if level_difference else ''}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["mean"], z["std"]
    total = sq = None
    count = 0
    for split in sorted(splits):
        audio = _load_one(cache_dir, split).audio  # (N, C, T, F), memory-mapped
        for start in range(0, len(audio), 64):
            a = np.asarray(audio[start:start + 64], dtype=np.float64)
            if level_difference:
                a = np.concatenate([a, a[:, 0:1] - a[:, 1:2]], axis=1)
            s1, s2 = a.sum(axis=(0, 2)), (a * a).sum(axis=(0, 2))
            total, sq = (s1, s2) if total is None else (total + s1, sq + s2)
            count += a.shape[0] * a.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    std = np.maximum(std, 1e-3 * float(np.median(std)) + 1e-12)
    mean, std = mean.astype(np.float32), std.astype(np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, mean=mean, std=std, splits=np.array(sorted(splits)))

    save_atomic(path, write)
    return mean, std
