"""Training data from the feature cache: split selection, room-disjoint validation, seeded batches.

Arrays stay memory-mapped (or in memory when several cached splits are concatenated); a batch is
one fancy-index read turned into tensors, with no per-clip Python work. Batch order comes from a
:class:`torch.utils.data.DistributedSampler` seeded by ``(seed, epoch)``, so the same indices come
out in one process or across ``torchrun`` ranks, and resuming at an epoch needs no sampler state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from avseld.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ClipArrays:
    """Features (and targets) of a set of clips, addressed by row.

    Attributes:
        names: clip names, one per row.
        rooms: room of each clip (``fold3_room2``) or None.
        audio: (N, C, T, F) float32 (memory-mapped or in memory).
        video: (N, 50, *visual_shape) float32 or None.
        targets: (N, 50, 6, 5, 13) float32 or None (eval).
        labels: clip name -> reference label array, or None (eval).
        rows: the rows of the arrays that belong to this set (all by default).
    """

    names: list[str]
    rooms: list[str | None]
    audio: np.ndarray
    video: np.ndarray | None
    targets: np.ndarray | None
    labels: dict[str, np.ndarray] | None
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def clip_names(self) -> list[str]:
        return [self.names[i] for i in self.rows]

    @property
    def visual_shape(self) -> tuple[int, ...] | None:
        return None if self.video is None else tuple(self.video.shape[2:])

    def subset(self, positions: np.ndarray) -> "ClipArrays":
        """The clips at ``positions`` (indices into this set)."""
        return ClipArrays(self.names, self.rooms, self.audio, self.video, self.targets, self.labels,
                          self.rows[np.asarray(positions, dtype=np.int64)])

    def ref_labels(self) -> dict[str, np.ndarray]:
        if self.labels is None:
            raise DataError("this split has no labels")
        return {n: self.labels[n] for n in self.clip_names}

    def fetch(self, positions: np.ndarray, device: torch.device, with_video: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Tensors ``audio (B, C, T, F)``, ``video (B, 50, ...)|None``, ``targets|None`` for ``positions``."""
        rows = self.rows[np.asarray(positions, dtype=np.int64)]

        def get(a):
            return None if a is None else torch.from_numpy(np.ascontiguousarray(a[rows], dtype=np.float32)).to(device)

        return get(self.audio), get(self.video) if with_video else None, get(self.targets)


def select_splits(available: list[str], prefixes: tuple[str, ...] | list[str] | str, cache_dir: Path) -> list[str]:
    """Cached split names starting with any of ``prefixes`` (a DataError if none)."""
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    chosen = [s for s in sorted(available) if any(s.startswith(p) for p in prefixes)]
    if not chosen:
        raise DataError(f"{cache_dir}: no cached split matches {list(prefixes)} (cached: {sorted(available)})")
    return chosen


def load_clip_arrays(cache_dir: str | Path, prefixes: tuple[str, ...] | list[str] | str, need_video: bool = True) -> ClipArrays:
    """Load every cached split matching ``prefixes`` (concatenated in memory when several)."""
    from avseld.cache import list_cached_splits, load_split

    cache_dir = Path(cache_dir)
    splits = [load_split(cache_dir, s) for s in select_splits(list_cached_splits(cache_dir), prefixes, cache_dir)]
    names = [n for s in splits for n in s.names]
    rooms = [r for s in splits for r in s.rooms]
    has_targets = all(s.targets is not None for s in splits)
    if len(splits) == 1:
        s = splits[0]
        audio, video, targets = s.audio, (s.video if need_video else None), s.targets
    else:
        audio = np.concatenate([s.audio for s in splits])
        video = np.concatenate([s.video for s in splits]) if need_video else None
        targets = np.concatenate([s.targets for s in splits]) if has_targets else None
    labels = None
    if has_targets and all(s.labels is not None for s in splits):
        labels = {k: v for s in splits for k, v in s.labels.items()}
    return ClipArrays(names, rooms, audio, video, targets if has_targets else None, labels,
                      np.arange(len(names), dtype=np.int64))


def split_by_rooms(rooms: list[str | None], val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions of training and validation clips, validation = whole rooms.

    ``round(val_fraction * n_rooms)`` rooms (at least one, leaving at least one for training) are
    drawn with a fixed generator (``seed``), so every run of a study shares the same split. Clips
    without a room are split at clip level.

    Returns:
        (train_positions, val_positions), each sorted.
    """
    n = len(rooms)
    if val_fraction <= 0:
        return np.arange(n), np.arange(0)
    rng = np.random.default_rng(seed)
    known = sorted({r for r in rooms if r is not None})
    if len(known) >= 2:
        n_val = min(max(1, round(val_fraction * len(known))), len(known) - 1)
        val_rooms = set(rng.permutation(known)[:n_val].tolist())
        is_val = np.array([r in val_rooms for r in rooms])
    else:
        log.warning("fewer than two training rooms: validation clips are drawn at clip level")
        n_val = min(max(1, round(val_fraction * n)), n - 1)
        is_val = np.zeros(n, dtype=bool)
        is_val[rng.permutation(n)[:n_val]] = True
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, world_size: int = 1, rank: int = 0) -> list[np.ndarray]:
    """This rank's batches of one epoch (positions into a set of ``n`` clips).

    The global batch ``j`` is ``perm[j*B:(j+1)*B]`` of a permutation seeded by ``seed + epoch``;
    rank ``r`` gets its elements ``r, r+W, ...`` (``B / W`` of them). Incomplete batches are
    dropped, as the baseline does.
    """
    if batch_size % world_size:
        raise ValueError(f"batch size {batch_size} is not divisible by the {world_size} processes")
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    idx = np.fromiter(iter(sampler), dtype=np.int64)
    per_rank = batch_size // world_size
    n_batches = len(idx) // per_rank
    return [idx[j * per_rank:(j + 1) * per_rank] for j in range(n_batches)]


def swap_flags(n: int, epoch: int, seed: int) -> np.ndarray:
    """Per-clip left-right swap decisions for one epoch (same in every process)."""
    g = torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch)
    return (torch.rand(n, generator=g) < 0.5).numpy()
