"""Log-mel front ends side by side on real clips: exactness against the cached features of the study
and against the official recipe, and speed (issue 18, item 8).

Variants, each ``(B, 2, N)`` float32 waveform -> ``(B, 2, T, 64)`` dB:
    - hand-written torch: ``torch.stft`` + librosa's Slaney filterbank + a hand-written
      ``power_to_db`` (``avseld.features.audio`` up to b49d55c, restated here so it stays measurable);
    - ``avseld.features.extract_logmel``: the package's front end at the commit this runs on;
    - torchaudio Spectrogram + librosa filterbank + AmplitudeToDB: torchaudio's STFT and dB, the
      mel projection with librosa's filterbank;
    - torchaudio MelSpectrogram + AmplitudeToDB: torchaudio alone (its own float32 Slaney filterbank);
    - the official recipe: librosa as partha2409/DCASE2025_seld_baseline's
      ``extract_log_mel_spectrogram`` computes it (``librosa.stft`` of the (2, N) clip, transposed,
      ``|.|**2``, ``librosa.feature.melspectrogram(S=...)``, ``power_to_db`` over the whole array).

"vs cache" compares with the log-mels the study trained on (``<cache>/<split>/audio.npy``, made by the
hand-written front end); bit-identical means ``np.array_equal`` on every clip. Speed: one torch thread,
one clip at a time and in one batch of all clips, each variant's fastest of ``--rounds`` interleaved\nrounds (each round starts with the next variant, so that no variant always follows the slow librosa one).

Run: ``python benchmarks/frontend_torchaudio.py --data <root> --cache <cache dir> [--clips 20]``
(defaults: the default profile's data and cache of /work/fresh2); writes ``results/frontend_torchaudio.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

SR, N_FFT, WIN, HOP, N_MELS = 24000, 1024, 960, 480, 64
AMIN, TOP_DB = 1e-10, 80.0


def official_recipe(audio: np.ndarray) -> np.ndarray:
    """(2, N) -> (2, T, 64), librosa as the official baseline calls it (SPEC section 4)."""
    import librosa

    stft = librosa.stft(y=audio, n_fft=N_FFT, hop_length=HOP, win_length=WIN).T  # (T, K, 2)
    mel = librosa.feature.melspectrogram(S=np.abs(stft) ** 2, sr=SR, n_mels=N_MELS)  # (T, 64, 2)
    return librosa.power_to_db(mel).transpose((2, 0, 1))


def make_variants() -> dict:
    import librosa
    import torch
    import torchaudio

    from avseld.features import extract_logmel

    basis = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32))
    window = torch.hann_window(WIN, periodic=True)
    spectrogram = torchaudio.transforms.Spectrogram(n_fft=N_FFT, win_length=WIN, hop_length=HOP, power=2.0,
                                                    center=True, pad_mode="constant")
    melspec = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_mels=N_MELS, power=2.0, center=True,
        pad_mode="constant", norm="slaney", mel_scale="slaney")
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=TOP_DB)

    def handwritten(x: torch.Tensor) -> torch.Tensor:
        b, c, n = x.shape
        spec = torch.stft(x.reshape(-1, n), n_fft=N_FFT, hop_length=HOP, win_length=WIN, window=window,
                          center=True, pad_mode="constant", return_complex=True)
        mel = torch.matmul(basis, spec.reshape(b, c, *spec.shape[-2:]).abs().pow(2))  # (B, 2, F, T)
        db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
        floor = db.reshape(b, -1).amax(dim=-1) - TOP_DB
        return torch.maximum(db, floor.reshape(b, 1, 1, 1)).transpose(-1, -2)

    return {
        "hand-written torch (before)": handwritten,
        "avseld.features.extract_logmel (this commit)": extract_logmel,
        "torchaudio Spectrogram + librosa filterbank + AmplitudeToDB":
            lambda x: to_db(torch.matmul(basis, spectrogram(x))).transpose(-1, -2),
        "torchaudio MelSpectrogram + AmplitudeToDB": lambda x: to_db(melspec(x)).transpose(-1, -2),
    }, float((melspec.mel_scale.fb.T - basis).abs().max())


def main() -> None:
    import torch

    from avseld.cache import load_split
    from avseld.dataset import discover_clips, load_audio

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/work/fresh2/data/synth_default")
    p.add_argument("--cache", default="/work/fresh2/data/cache/79722188904b")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)

    cached: dict[str, np.ndarray] = {}
    splits = sorted({c.split for c in discover_clips(args.data)})
    clips = []
    for split in splits:  # the first clips of every split, as evenly as --clips allows
        s = load_split(args.cache, split)
        index = {n: i for i, n in enumerate(s.names)}
        for c in [c for c in discover_clips(args.data, [split]) if c.name in index][: args.clips // len(splits)]:
            clips.append(c)
            cached[c.name] = np.asarray(s.audio[index[c.name], :2])
    audio = np.stack([load_audio(c.wav, SR) for c in clips])  # (B, 2, N) float32
    x = torch.from_numpy(audio)
    official = np.stack([official_recipe(a) for a in audio])
    ref = np.stack([cached[c.name] for c in clips])
    variants, fb_diff = make_variants()

    rows = []
    timing: dict[str, list[tuple[float, float]]] = {k: [] for k in [*variants, "official recipe (librosa)"]}
    names = list(timing)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:  # each round starts with the next variant
            if name not in variants:
                t0 = time.perf_counter()
                for a in audio:
                    official_recipe(a)
                timing[name].append(((time.perf_counter() - t0) / len(x), float("nan")))
                continue
            f = variants[name]
            f(x[:1])  # warm up (filterbank, window, plans)
            t0 = time.perf_counter()
            for i in range(len(x)):
                f(x[i : i + 1])
            t1 = time.perf_counter()
            f(x)
            t2 = time.perf_counter()
            timing[name].append(((t1 - t0) / len(x), (t2 - t1) / len(x)))
    base = min(t[0] for t in timing["hand-written torch (before)"])
    outputs = {name: np.asarray(f(x)) for name, f in variants.items()}
    outputs["official recipe (librosa)"] = official
    for name, out in outputs.items():
        per_clip = min(t[0] for t in timing[name])
        batched = min(t[1] for t in timing[name])  # nan for the official recipe (clip by clip only)
        rows.append({
            "variant": name,
            "clips": len(clips),
            "bit_identical_to_cache": bool(all(np.array_equal(out[i], ref[i]) for i in range(len(clips)))),
            "max_abs_db_vs_cache": float(np.abs(out - ref).max()),
            "max_abs_db_vs_official": float(np.abs(out - official).max()),
            "ms_per_clip": 1e3 * per_clip,
            "ms_per_clip_batched": None if np.isnan(batched) else 1e3 * batched,
            "speed_vs_hand_written": base / per_clip,
        })
    notes = (f"{len(clips)} clips of {args.data} ({', '.join(splits)}), 5 s stereo at 24 kHz -> (2, 251, 64); "
             f"cache {args.cache}; torch threads 1, {os.cpu_count()} cores, load average at end "
             f"{os.getloadavg()[0]:.1f} (a long study shared the machine: compare speeds within this table only); "
             f"batched = all clips in one call. torchaudio's Slaney filterbank (float32 arithmetic) differs from "
             f"librosa's (float64, then float32) by up to {fb_diff:.2e}, which is what moves the pure-torchaudio "
             f"variant off the cached features.")
    print(write_result("frontend_torchaudio", rows, notes))


if __name__ == "__main__":
    main()
