"""Stereo log-mel features exactly as the DCASE 2025 Task 3 baseline computes them, plus optional
inter-channel features (mid/side log-mel, ILD, IPD), in torch so that they run batched and on a GPU.

Recipe (SPEC section 4; partha2409/DCASE2025_seld_baseline, ``extract_log_mel_spectrogram``): per
channel a power STFT (periodic Hann window of 960 samples centred in a 1024-point FFT, hop 480,
centred frames with zero padding), a 64-band Slaney mel filterbank (librosa defaults), then
``power_to_db`` with ref 1.0, amin 1e-10 and top_db 80 taken over the whole ``(2, T, F)`` array of a
clip. A 5-s clip at 24 kHz gives ``(2, 251, 64)``.

:class:`LogMel` runs it on torchaudio: ``transforms.Spectrogram`` for the STFT and
``transforms.AmplitudeToDB`` for the dB step. The mel projection multiplies by librosa's filterbank:
torchaudio's own Slaney filterbank (``MelScale`` / ``MelSpectrogram``), computed in float32, differs
from librosa's by up to 4.5e-8 and moves the features by up to 1.9e-3 dB (720 default-profile clips),
so it would not give the cached features bit for bit (``benchmarks/results/frontend_torchaudio.md``;
both stay within 0.01 dB of the official recipe: 8.4e-4 and 1.9e-3 dB). The IPD pools the complex
cross-spectrum, which ``MelScale`` (real filterbank) cannot take, so it multiplies by the same matrix.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
import torchaudio

AMIN = 1e-10  # power floor of power_to_db (torchaudio's AmplitudeToDB uses the same)
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


class LogMel(torch.nn.Module):
    """Multichannel log-mel front end, the official recipe (module docstring), on torchaudio.

    Args:
        sample_rate: sampling rate in Hz (the mel filterbank depends on it).
        n_fft: FFT size.
        win_length: Hann window length (centred in the FFT frame), at most ``n_fft``.
        hop_length: frame hop in samples.
        n_mels: number of mel bands.

    Raises:
        ValueError: for a non-positive size or a window longer than the FFT.
    """

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, win_length: int = 960, hop_length: int = 480,
                 n_mels: int = 64) -> None:
        super().__init__()
        if min(sample_rate, n_fft, win_length, hop_length, n_mels) <= 0 or win_length > n_fft:
            raise ValueError(f"log-mel needs positive sizes and win_length <= n_fft, got sample_rate={sample_rate}, "
                             f"n_fft={n_fft}, win_length={win_length}, hop_length={hop_length}, n_mels={n_mels}")
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, power=None, center=True, pad_mode="constant")
        self.register_buffer("mel_basis", _mel_basis(sample_rate, n_fft, n_mels), persistent=False)  # (F, K)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=TOP_DB)

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, N)`` waveform -> ``(B, C, K, T)`` complex STFT, K = n_fft // 2 + 1."""
        return self.spectrogram(x)

    def mel_power(self, power: torch.Tensor) -> torch.Tensor:
        """``(B, C, K, T)`` power spectra -> ``(B, C, F, T)`` mel powers."""
        return torch.matmul(self.mel_basis, power)

    def to_logmel(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, C, F, T)`` mel powers -> ``(B, C, T, F)`` dB, the 80-dB floor under each item's maximum."""
        return self.to_db(mel).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, N)`` waveform -> ``(B, C, T, F)`` log-mel, T = 1 + N // hop_length."""
        return self.to_logmel(self.mel_power(self.stft(x).abs().pow(2)))


@functools.lru_cache(maxsize=8)
def _logmel(sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int, device: str) -> LogMel:
    """One :class:`LogMel` per setting and device, built once."""
    return LogMel(sample_rate, n_fft, win_length, hop_length, n_mels).to(device)


def _as_tensor(audio: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(audio, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), True
    if not isinstance(audio, torch.Tensor):
        raise TypeError(f"audio must be a numpy array or a torch tensor, got {type(audio).__name__}")
    return audio.float(), False


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
    out = _logmel(sample_rate, n_fft, win_length, hop_length, n_mels, str(x.device))(x)
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
    logmel = _logmel(sample_rate, n_fft, win_length, hop_length, n_mels, str(x.device))
    spec = logmel.stft(x)  # (B, 2, K, T) complex
    power = spec.abs().pow(2)
    parts = [logmel.to_logmel(logmel.mel_power(power))]
    for extra in audio_extra:
        if extra == "midside":
            ms = torch.stack([(x[:, 0] + x[:, 1]) / 2, (x[:, 0] - x[:, 1]) / 2], dim=1)
            parts.append(logmel(ms))
        elif extra == "ild":
            mel = logmel.mel_power(power)  # (B, 2, F, T)
            ild = 10.0 * (torch.log10(mel[:, 0] + AMIN) - torch.log10(mel[:, 1] + AMIN))
            parts.append(ild.transpose(-1, -2).unsqueeze(1))
        elif extra == "ipd":
            cross = spec[:, 0] * spec[:, 1].conj()  # (B, K, T)
            basis_c = logmel.mel_basis.to(cross.dtype)  # MelScale's filterbank is real-only
            pooled = torch.matmul(basis_c, cross)  # (B, F, T)
            mag = pooled.abs()
            unit = torch.where(mag > AMIN, pooled / mag.clamp(min=AMIN), torch.zeros_like(pooled))
            parts.append(torch.stack([unit.real, unit.imag], dim=1).transpose(-1, -2))
    out = torch.cat(parts, dim=1).float()
    if not batched:
        out = out[0]
    return out.cpu().numpy() if was_numpy else out
