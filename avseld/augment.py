"""Training augmentations: the left-right swap, consistent across audio, video and targets, and
spectrogram masking.

Mirroring the scene about the camera axis swaps the stereo channels, negates every azimuth (so the
target y = sin(az) changes sign, x = cos(az) does not) and flips the image horizontally; on-screen
flags and distances are unchanged. The stereo "channel swap" augmentation of e.g. Wang et al.,
"Four-stage data augmentation for SELD", DCASE 2021 (stereo case), extended to the video stream.

Audio channels (see :func:`avseld.features.audio_channel_names`): the two log-mel channels swap;
ILD and the IPD sine change sign; mid, side and the IPD cosine are unchanged (the side signal
(L - R) / 2 changes sign, but its log-mel, a power, does not).

Visual features: in baseline mode each frame is a square map ``h x w`` flattened row-major, so the
columns are reversed; in full-view mode the tokens form a ``rows x cols`` grid (row-major) whose
columns are reversed, token vectors unchanged. A flipped feature map is an approximation of the
features of a flipped image (CNNs are not exactly mirror-equivariant), the standard compromise
when the features are cached.

Spectrogram masking (:func:`mask_spectrogram`, ``train.freq_masks`` / ``train.time_masks``) is the
frequency and time masking of Park et al., "SpecAugment", Interspeech 2019, as SELD systems use it
(e.g. the four-stage augmentation above): the same mel bands and frames are masked in every audio
channel, so inside a mask the channels carry no level or phase difference, outside it they keep theirs;
the targets are unchanged.
"""

from __future__ import annotations

import math
from typing import Sequence, TypeVar

import numpy as np
import torch

from avseld.features.audio import swap_permutation
from avseld.layout import target_field

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _flip(x: Array, axis: int) -> Array:
    return torch.flip(x, dims=(axis,)) if isinstance(x, torch.Tensor) else np.flip(x, axis=axis).copy()


def swap_audio(audio_feat: Array, audio_extra: Sequence[str] = ()) -> Array:
    """Mirror ``(..., C, T, F)`` audio features (channel order of ``audio_extra``)."""
    perm, sign = swap_permutation(audio_extra)
    if audio_feat.shape[-3] != len(perm):
        raise ValueError(f"audio features have {audio_feat.shape[-3]} channels, expected {len(perm)} for extras {tuple(audio_extra)}")
    if isinstance(audio_feat, torch.Tensor):
        s = torch.tensor(sign, dtype=audio_feat.dtype, device=audio_feat.device).view(-1, 1, 1)
        return audio_feat[..., perm, :, :] * s
    return audio_feat[..., perm, :, :] * np.asarray(sign, dtype=audio_feat.dtype).reshape(-1, 1, 1)


def swap_video(video_feat: Array, visual_grid: tuple[int, int] | None = None) -> Array:
    """Mirror visual features horizontally.

    Args:
        video_feat: baseline mode ``(..., D)`` with D = side * side (a square map, row-major);
            full-view mode ``(..., n_tokens, dim)`` with ``n_tokens = rows * cols``.
        visual_grid: None for baseline mode; ``(rows, cols)`` (``features.fullview_grid``) for
            full-view tokens.
    """
    if visual_grid is None:
        d = video_feat.shape[-1]
        side = math.isqrt(d)
        if side * side != d:
            raise ValueError(f"baseline visual features need a square map, got {d} values per frame; "
                             "pass visual_grid=(rows, cols) for full-view tokens")
        m = video_feat.reshape(*video_feat.shape[:-1], side, side)
        return _flip(m, -1).reshape(video_feat.shape)
    rows, cols = visual_grid
    if video_feat.shape[-2] != rows * cols:
        raise ValueError(f"full-view features have {video_feat.shape[-2]} tokens, expected {rows}x{cols}")
    m = video_feat.reshape(*video_feat.shape[:-2], rows, cols, video_feat.shape[-1])
    return _flip(m, -2).reshape(video_feat.shape)


def swap_targets(targets: Array) -> Array:
    """Mirror ``(..., 5, 13)`` targets (ADPIT ``(..., 6, 5, 13)`` or single-ACCDOA): y negated."""
    out = targets.clone() if isinstance(targets, torch.Tensor) else np.array(targets, copy=True)
    y = target_field("y")
    out[..., y, :] = -out[..., y, :]
    return out


def swap_left_right(
    audio_feat: Array | None,
    video_feat: Array | None,
    targets: Array | None,
    audio_extra: Sequence[str] = (),
    visual_grid: tuple[int, int] | None = None,
) -> tuple[Array | None, Array | None, Array | None]:
    """Left-right mirrored ``(audio, video, targets)``; any of them may be None (passed through).

    Args:
        audio_feat: ``(..., C, T, F)``.
        video_feat: ``(..., 50, D)`` (baseline) or ``(..., 50, n_tokens, dim)`` (full-view).
        targets: ``(..., 50, 6, 5, 13)`` or ``(..., 50, 5, 13)``.
        audio_extra: ``features.audio_extra`` (channel layout of the audio features).
        visual_grid: None for baseline-mode video, ``features.fullview_grid`` for full-view tokens.

    Returns:
        The mirrored triple, new arrays/tensors of the same types and shapes. Applying it twice
        gives the input back.
    """
    return (
        None if audio_feat is None else swap_audio(audio_feat, audio_extra),
        None if video_feat is None else swap_video(video_feat, visual_grid),
        None if targets is None else swap_targets(targets),
    )


def mask_spectrogram(audio: torch.Tensor, fill: torch.Tensor, rng: np.random.Generator, n_freq: int, max_bands: int,
                     n_time: int, max_frames: int) -> torch.Tensor:
    """Frequency and time masks on a batch of audio features (a new tensor; ``audio`` is not changed).

    Each clip gets ``n_freq`` masks of 0 to ``max_bands`` consecutive mel bands and ``n_time`` masks of
    0 to ``max_frames`` consecutive frames (widths and positions uniform, drawn from ``rng``), the same
    in every channel; masked values become ``fill``, the training split's mean of that channel and band
    (0 after ``train.standardize``).

    Args:
        audio: ``(B, C, T, F)``.
        fill: ``(C, F)``.
        rng: the draws (the caller seeds it per epoch, apart from torch's random stream).

    Returns:
        ``(B, C, T, F)``.
    """
    b, c, t, f = audio.shape
    if fill.shape != (c, f):
        raise ValueError(f"fill has shape {tuple(fill.shape)}, expected {(c, f)} for audio {tuple(audio.shape)}")
    keep = np.ones((b, t, f), dtype=bool)
    for i in range(b):
        for _ in range(n_freq):
            w = int(rng.integers(0, min(max_bands, f) + 1))
            f0 = int(rng.integers(0, f - w + 1))
            keep[i, :, f0:f0 + w] = False
        for _ in range(n_time):
            w = int(rng.integers(0, min(max_frames, t) + 1))
            t0 = int(rng.integers(0, t - w + 1))
            keep[i, t0:t0 + w, :] = False
    k = torch.from_numpy(keep).to(audio.device).unsqueeze(1)  # (B, 1, T, F)
    return torch.where(k, audio, fill.to(audio.device, audio.dtype).view(1, c, 1, f))
