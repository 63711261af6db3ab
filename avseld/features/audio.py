"""Stereo log-mel features exactly as the DCASE 2025 Task 3 baseline computes them, plus optional
inter-channel features (mid/side log-mel, ILD, IPD), in torch so that they run batched and on a GPU.

Recipe (SPEC section 4; partha2409/DCASE2025_seld_baseline, ``extract_log_mel_spectrogram``): per
channel a power STFT (periodic Hann window of 960 samples centred in a 1024-point FFT, hop 480,
centred frames with zero padding), a 64-band Slaney mel filterbank (librosa defaults), then
``power_to_db`` with ref 1.0, amin 1e-10 and top_db 80 taken over the whole ``(2, T, F)`` array of a
clip. A 5-s clip at 24 kHz gives ``(2, 251, 64)``.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

AMIN = 1e-10  # power floor of power_to_db
TOP_DB = 80.0  # dynamic range kept below the clip maximum
AUDIO_EXTRAS = ("midside", "ild", "ipd")  # optional extra channels, in any order

# channel names each extra appends (the two log-mel channels come first)
_EXTRA_CHANNELS = {
    "midside": ("logmel_mid", "logmel_side"),
    "ild": ("ild",),
    "ipd": ("ipd_cos", "ipd_sin"),
}
# what a left-right swap does to each channel: its sign (+1 / -1); logmel_L <-> logmel_R swap.
# The side signal (L - R) / 2 changes sign, but its log-mel (a power) does not, so it is unchanged.
_SWAP_SIGN = {
    "logmel_L": 1.0,
    "logmel_R": 1.0,
    "logmel_mid": 1.0,
    "logmel_side": 1.0,
    "ild": -1.0,
    "ipd_cos": 1.0,
    "ipd_sin": -1.0,
}


def audio_channel_names(audio_extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Names of the channels of an audio feature array, in order.

    Args:
        audio_extra: extra features, any of ``"midside"``, ``"ild"``, ``"ipd"``.

    Returns:
        ``("logmel_L", "logmel_R", ...)``; its length is the channel count C.

    Raises:
        ValueError: for an unknown or repeated extra.
    """
    names = ["logmel_L", "logmel_R"]
    seen = set()
    for extra in audio_extra:
        if extra not in _EXTRA_CHANNELS:
            raise ValueError(f"unknown audio extra feature {extra!r}; expected any of {list(AUDIO_EXTRAS)}")
        if extra in seen:
            raise ValueError(f"audio extra feature {extra!r} given twice")
        seen.add(extra)
        names += _EXTRA_CHANNELS[extra]
    return tuple(names)


def swap_permutation(audio_extra: Sequence[str] = ()) -> tuple[list[int], list[float]]:
    """Channel permutation and signs that mirror an audio feature array left-right.

    Returns:
        ``(perm, sign)`` so that ``swapped[c] = sign[c] * feat[perm[c]]``.
    """
    names = audio_channel_names(audio_extra)
    perm = list(range(len(names)))
    perm[0], perm[1] = 1, 0
    return perm, [_SWAP_SIGN[n] for n in names]


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """librosa's Slaney mel filterbank ``(n_mels, n_fft // 2 + 1)`` float32, computed once."""
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32))


def _as_tensor(audio: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(audio, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), True
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"audio must be a numpy array or a torch tensor, got {type(audio).__name__}")
    return audio.float(), False


def _stft(x: torch.Tensor, n_fft: int, win_length: int, hop_length: int) -> torch.Tensor:
    """Complex STFT of ``(..., N)`` -> ``(..., n_fft // 2 + 1, T)``; centred, zero padded."""
    lead = x.shape[:-1]
    window = torch.hann_window(win_length, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def _power_to_db(mel: torch.Tensor, n_lead: int) -> torch.Tensor:
    """``power_to_db(ref=1, amin=1e-10, top_db=80)``, the maximum taken per item of the lead dims."""
    db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
    flat = db.reshape(*db.shape[:n_lead], -1)
    floor = flat.amax(dim=-1) - TOP_DB
    return torch.maximum(db, floor.reshape(*floor.shape, *([1] * (db.dim() - n_lead))))


def _logmel_from_power(power: torch.Tensor, mel_basis: torch.Tensor) -> torch.Tensor:
    """``(B, 2, K, T)`` power spectra -> ``(B, 2, T, F)`` log-mel, top_db over each clip."""
    mel = torch.matmul(mel_basis, power)  # (B, 2, F, T)
    return _power_to_db(mel, n_lead=1).transpose(-1, -2)


def extract_logmel(
    audio: np.ndarray | torch.Tensor,
    sample_rate: int = 24000,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
) -> np.ndarray | torch.Tensor:
    """Stereo log-mel spectrogram, the official baseline's recipe.

    Args:
        audio: ``(2, N)`` or ``(B, 2, N)`` waveform (numpy or torch; a tensor stays on its device).
        sample_rate: sampling rate in Hz (the mel filterbank depends on it).
        n_fft: FFT size.
        win_length: Hann window length (centred in the FFT frame).
        hop_length: frame hop in samples.
        n_mels: number of mel bands.

    Returns:
        ``(2, T, F)`` or ``(B, 2, T, F)`` float32 log-mel in dB, T = 1 + N // hop_length, F = n_mels;
        a numpy array for numpy input, a tensor otherwise. The 80-dB floor is relative to the
        maximum of each clip (both channels together), as in the official code.
    """
    x, was_numpy = _as_tensor(audio)
    batched = x.dim() == 3
    if x.dim() not in (2, 3) or x.shape[-2] != 2:
        raise ValueError(f"audio must have shape (2, N) or (B, 2, N), got {tuple(x.shape)}")
    if not batched:
        x = x.unsqueeze(0)
    power = _stft(x, n_fft, win_length, hop_length).abs().pow(2)  # (B, 2, K, T)
    out = _logmel_from_power(power, _mel_basis(sample_rate, n_fft, n_mels).to(x.device))
    if not batched:
        out = out[0]
    return out.cpu().numpy() if was_numpy else out


def extract_audio_features(
    audio: np.ndarray | torch.Tensor,
    audio_extra: Sequence[str] = (),
    sample_rate: int = 24000,
    n_fft: int = 1024,
    win_length: int = 960,
    hop_length: int = 480,
    n_mels: int = 64,
) -> np.ndarray | torch.Tensor:
    """Log-mel of both channels followed by the chosen extra stereo features.

    Extras (channels appended in the order given; names from :func:`audio_channel_names`):
        - ``"midside"``: log-mel of mid (L + R) / 2 and side (L - R) / 2, same recipe (their own
          80-dB floor over the mid/side pair).
        - ``"ild"``: inter-channel level difference per mel band,
          ``10 log10((P_L + amin) / (P_R + amin))`` in dB on the mel powers (not clipped).
        - ``"ipd"``: cos and sin of the inter-channel phase difference, from the mel-pooled cross
          spectrum ``sum_k w_fk X_L conj(X_R)`` normalised to unit length (0 where it vanishes).

    Args:
        audio: ``(2, N)`` or ``(B, 2, N)`` waveform.
        audio_extra: any of ``"midside"``, ``"ild"``, ``"ipd"``.

    Returns:
        ``(C, T, F)`` or ``(B, C, T, F)`` float32, C = ``len(audio_channel_names(audio_extra))``.
    """
    audio_channel_names(audio_extra)  # validates
    x, was_numpy = _as_tensor(audio)
    batched = x.dim() == 3
    if x.dim() not in (2, 3) or x.shape[-2] != 2:
        raise ValueError(f"audio must have shape (2, N) or (B, 2, N), got {tuple(x.shape)}")
    if not batched:
        x = x.unsqueeze(0)
    basis = _mel_basis(sample_rate, n_fft, n_mels).to(x.device)
    spec = _stft(x, n_fft, win_length, hop_length)  # (B, 2, K, T) complex
    power = spec.abs().pow(2)
    parts = [_logmel_from_power(power, basis)]
    for extra in audio_extra:
        if extra == "midside":
            ms = torch.stack([(x[:, 0] + x[:, 1]) / 2, (x[:, 0] - x[:, 1]) / 2], dim=1)
            ms_power = _stft(ms, n_fft, win_length, hop_length).abs().pow(2)
            parts.append(_logmel_from_power(ms_power, basis))
        elif extra == "ild":
            mel = torch.matmul(basis, power)  # (B, 2, F, T)
            ild = 10.0 * (torch.log10(mel[:, 0] + AMIN) - torch.log10(mel[:, 1] + AMIN))
            parts.append(ild.transpose(-1, -2).unsqueeze(1))
        elif extra == "ipd":
            cross = spec[:, 0] * spec[:, 1].conj()  # (B, K, T)
            basis_c = basis.to(cross.dtype)
            pooled = torch.matmul(basis_c, cross)  # (B, F, T)
            mag = pooled.abs()
            unit = torch.where(mag > AMIN, pooled / mag.clamp(min=AMIN), torch.zeros_like(pooled))
            parts.append(torch.stack([unit.real, unit.imag], dim=1).transpose(-1, -2))
    out = torch.cat(parts, dim=1).float()
    if not batched:
        out = out[0]
    return out.cpu().numpy() if was_numpy else out
