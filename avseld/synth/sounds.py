"""Thirteen class-specific sound generators with distinct spectro-temporal signatures (SPEC section 6).

Each generator returns a dry, mono, float64 signal of the requested length with unit RMS, built
from a few physical or phonetic ideas: harmonic voiced syllables with formants at two pitch
ranges (the speech classes), noise bursts (clapping), a two-tone warbling ring (telephone),
inharmonic exponentially decaying partials (bell), impulsive trains (knock, footsteps), etc.
Everything is drawn from the ``numpy.random.Generator`` passed in, so a seed fixes the sound.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal as sps

from avseld.layout import CLASS_NAMES

Generator = Callable[[np.random.Generator, int, int], np.ndarray]

# vowel formants (F1, F2, F3) in Hz for an adult male voice; scaled up for the female voice
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410],
                    [660, 1720, 2410], [440, 1020, 2240]], dtype=np.float64)


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: int, order: int = 2) -> np.ndarray:
    sos = sps.butter(order, [lo, min(hi, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
    return sps.sosfilt(sos, x)


def _lowpass(x: np.ndarray, hi: float, sr: int, order: int = 2) -> np.ndarray:
    return sps.sosfilt(sps.butter(order, hi, btype="lowpass", fs=sr, output="sos"), x)


def _highpass(x: np.ndarray, lo: float, sr: int, order: int = 2) -> np.ndarray:
    return sps.sosfilt(sps.butter(order, lo, btype="highpass", fs=sr, output="sos"), x)


def _add_at(out: np.ndarray, start: int, x: np.ndarray) -> None:
    """Add ``x`` into ``out`` from sample ``start``, truncating at the end."""
    if start >= len(out) or start + len(x) <= 0:
        return
    s0 = max(start, 0)
    out[s0 : start + len(x)] += x[s0 - start : len(out) - start]


def _decay(n: int, tau_s: float, sr: int) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau_s * sr))


def _glottal(f0: np.ndarray, sr: int) -> np.ndarray:
    """A sawtooth glottal source following the per-sample pitch ``f0`` (Hz)."""
    phase = np.cumsum(f0) / sr
    return 2.0 * (phase % 1.0) - 1.0


def _formant_filter(x: np.ndarray, formants: np.ndarray, sr: int) -> np.ndarray:
    """Parallel second-order resonators at the formant frequencies (vocal-tract model)."""
    out = np.zeros_like(x)
    for i, f in enumerate(formants):
        bw = 80.0 * (1 + i)
        sos = sps.butter(1, [f - bw / 2, f + bw / 2], btype="bandpass", fs=sr, output="sos")
        out += (0.6**i) * sps.sosfilt(sos, x)
    return out


def _speech(rng: np.random.Generator, n: int, sr: int, f0_range: tuple[float, float], formant_scale: float) -> np.ndarray:
    out = np.zeros(n)
    base_f0 = rng.uniform(*f0_range)
    pos = int(rng.uniform(0.0, 0.08) * sr)
    while pos < n:
        syl = int(rng.uniform(0.12, 0.28) * sr)
        t = np.arange(syl) / sr
        contour = base_f0 * (1 + rng.uniform(-0.12, 0.12) - rng.uniform(0.0, 0.6) * t) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))
        formants = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
        voiced = _formant_filter(_glottal(contour, sr), formants, sr)
        voiced /= np.std(voiced) + 1e-12
        env = np.sin(np.pi * np.minimum(1.0, np.arange(syl) / syl)) ** 0.6
        seg = voiced * env
        cons = int(0.03 * sr)  # a fricative/plosive onset
        fric = _highpass(rng.standard_normal(cons), 2500, sr)
        seg[:cons] += 0.2 * fric / (np.std(fric) + 1e-12) * np.hanning(cons)
        _add_at(out, pos, seg)
        pos += syl + int(rng.choice([rng.uniform(0.02, 0.08), rng.uniform(0.15, 0.4)], p=[0.75, 0.25]) * sr)
    return out


def female_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Voiced syllables, f0 170-260 Hz, formants scaled x1.17."""
    return _speech(rng, n, sr, (170.0, 260.0), 1.17)


def male_speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Voiced syllables, f0 85-140 Hz, adult male formants."""
    return _speech(rng, n, sr, (85.0, 140.0), 1.0)


def clapping(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Short band-passed noise bursts at 3-6 claps per second."""
    out = np.zeros(n)
    rate = rng.uniform(3.0, 6.0)
    burst = int(0.05 * sr)
    pos = int(rng.uniform(0, 0.1) * sr)
    while pos < n:
        _add_at(out, pos, rng.standard_normal(burst) * _decay(burst, 0.008, sr) * rng.uniform(0.7, 1.0))
        pos += int(sr / rate * rng.uniform(0.85, 1.15))
    return _bandpass(out, rng.uniform(700, 1200), rng.uniform(3000, 5000), sr)


def telephone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Two-tone ring: two pure tones alternating at ~16 Hz, 0.4 s on / 0.2 s off cadence."""
    f1 = rng.uniform(400, 900)
    f2 = f1 * rng.uniform(1.15, 1.35)
    t = np.arange(n) / sr
    warble = (np.sin(2 * np.pi * rng.uniform(14, 20) * t) > 0).astype(float)
    warble = np.convolve(warble, np.ones(48) / 48, mode="same")
    tone = warble * np.sin(2 * np.pi * f1 * t) + (1 - warble) * np.sin(2 * np.pi * f2 * t)
    tone += 0.3 * np.sin(2 * np.pi * 3 * f1 * t) * warble
    period = rng.uniform(0.5, 0.7)
    gate = ((t % period) < 0.65 * period).astype(float)
    gate = np.convolve(gate, np.ones(120) / 120, mode="same")
    return tone * gate


def laughter(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Breathy voiced 'ha' bursts at 4-6 per second with falling pitch."""
    out = np.zeros(n)
    f0 = rng.uniform(220, 380)
    rate = rng.uniform(4.0, 6.0)
    pos = 0
    i = 0
    while pos < n:
        m = int(rng.uniform(0.08, 0.13) * sr)
        t = np.arange(m) / sr
        contour = f0 * (1 - 0.02 * i) * (1 - 0.8 * t)
        voiced = _formant_filter(_glottal(contour, sr), np.array([800.0, 1300.0, 2800.0]), sr)
        breath = _bandpass(rng.standard_normal(m), 1000, 5000, sr)
        env = np.sin(np.pi * np.arange(m) / m)
        _add_at(out, pos, (voiced + 0.5 * breath * np.std(voiced)) * env)
        pos += int(sr / rate * rng.uniform(0.8, 1.2))
        i += 1
        if rng.random() < 0.08:
            pos += int(rng.uniform(0.2, 0.5) * sr)  # breath pause
    return out


def domestic(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Appliance: motor hum (harmonics of 50-120 Hz) plus low-passed broadband noise, slow AM."""
    t = np.arange(n) / sr
    fm = rng.uniform(50, 120)
    hum = sum((1.0 / k) * np.sin(2 * np.pi * k * fm * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    noise = _lowpass(rng.standard_normal(n), rng.uniform(1200, 2500), sr)
    am = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    return (0.6 * hum / 2.0 + noise * 1.5) * am


def footsteps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Impulsive train at ~2 steps per second: a low thump and a short scuff per step."""
    out = np.zeros(n)
    interval = rng.uniform(0.42, 0.62)
    pos = int(rng.uniform(0, 0.2) * sr)
    thump_n, scuff_n = int(0.08 * sr), int(0.02 * sr)
    while pos < n:
        thump = _lowpass(rng.standard_normal(thump_n), 400, sr) * _decay(thump_n, 0.02, sr) * 3
        scuff = _highpass(rng.standard_normal(scuff_n), 3000, sr) * _decay(scuff_n, 0.005, sr) * 0.5
        _add_at(out, pos, thump)
        _add_at(out, pos + int(0.01 * sr), scuff)
        pos += int(interval * sr * rng.uniform(0.92, 1.08))
    return out


def door(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Creak (stick-slip pulse train of gliding rate) followed by a slam (low damped thump)."""
    out = np.zeros(n)
    creak_n = int(min(0.7 * n, rng.uniform(0.3, 0.8) * sr))
    rate = np.linspace(rng.uniform(30, 70), rng.uniform(80, 160), creak_n)
    ph = np.cumsum(rate) / sr
    pulses = (np.diff(np.floor(ph), prepend=0) > 0).astype(float)
    creak = _bandpass(pulses, 300, 3000, sr) * np.hanning(creak_n) * 4
    out[:creak_n] += creak
    slam_at = min(n - 1, creak_n + int(rng.uniform(0.0, 0.1) * sr))
    m = int(0.3 * sr)
    t = np.arange(m) / sr
    slam = np.sin(2 * np.pi * rng.uniform(60, 120) * t) * np.exp(-t / 0.06) * 3
    slam += _lowpass(rng.standard_normal(m), 2000, sr) * np.exp(-t / 0.01) * 2
    _add_at(out, slam_at, slam)
    return out


def music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Chord progression of harmonic notes (0.4-0.6 s per chord) with a bass line and a beat."""
    out = np.zeros(n)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    chord_len = int(rng.uniform(0.4, 0.6) * sr)
    progression = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (9, 12, 16), (2, 5, 9)]
    pos = 0
    t = np.arange(chord_len) / sr
    env = np.minimum(1.0, t / 0.02) * np.exp(-t / 0.8)
    while pos < n:
        chord = progression[rng.integers(len(progression))]
        seg = np.zeros(chord_len)
        for semis in chord:
            f = 2 * root * 2 ** (semis / 12)
            seg += sum((0.6**k) * np.sin(2 * np.pi * (k + 1) * f * t) for k in range(5))
        seg += 1.5 * np.sin(2 * np.pi * root * 2 ** (chord[0] / 12) * t)
        kick = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.05) * 2
        _add_at(out, pos, seg * env + kick)
        pos += chord_len
    return out


def instrument(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A plucked melodic line: single notes of 250-900 Hz with exponentially decaying harmonics."""
    out = np.zeros(n)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14])
    base = rng.uniform(250, 450)
    rate = rng.uniform(3.0, 5.0)
    pos = 0
    while pos < n:
        f = base * 2 ** (scale[rng.integers(len(scale))] / 12)
        m = int(0.5 * sr)
        t = np.arange(m) / sr
        note = sum((1.0 / (k**1.5)) * np.sin(2 * np.pi * k * f * t) * np.exp(-t * (3 + 3 * k)) for k in range(1, 8))
        _add_at(out, pos, note * np.minimum(1.0, t / 0.003))
        pos += int(sr / rate)
    return out


def water_tap(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Running water: high-passed noise with fast random modulation plus rising droplet chirps."""
    noise = _bandpass(rng.standard_normal(n), 1000, 8000, sr)
    am = _lowpass(rng.standard_normal(n), 30, sr)
    am = 1 + 2.0 * am / (np.std(am) + 1e-9) * 0.25
    out = noise * np.clip(am, 0.2, None)
    n_drops = int(rng.uniform(20, 40) * n / sr)
    m = int(0.012 * sr)
    t = np.arange(m) / sr
    for start in rng.integers(0, max(1, n - m), n_drops):
        f0 = rng.uniform(800, 2500)
        chirp = np.sin(2 * np.pi * (f0 * t + 0.5 * f0 * 80 * t**2)) * np.hanning(m) * 2
        _add_at(out, int(start), chirp)
    return out


def bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Struck bell: inharmonic partials with long exponential decays, one strike every ~1 s."""
    out = np.zeros(n)
    f = rng.uniform(450, 1400)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 2.66, 3.01, 4.1])
    amps = np.array([0.6, 1.0, 0.8, 0.5, 0.6, 0.4, 0.3, 0.25, 0.15])
    decays = rng.uniform(0.5, 1.5) / (1 + 0.4 * np.arange(len(ratios)))
    pos = 0
    m = int(1.8 * sr)
    t = np.arange(m) / sr
    strike = sum(a * np.sin(2 * np.pi * f * r * t) * np.exp(-t / d) for a, r, d in zip(amps, ratios, decays))
    strike *= np.minimum(1.0, t / 0.002)
    interval = rng.uniform(0.8, 1.6)
    while pos < n:
        _add_at(out, pos, strike * rng.uniform(0.8, 1.0))
        pos += int(interval * sr)
    return out


def knock(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Groups of 2-4 knocks at 6-9 per second: a resonant wooden thud plus a click."""
    out = np.zeros(n)
    f = rng.uniform(150, 350)
    m = int(0.06 * sr)
    t = np.arange(m) / sr
    pos = int(rng.uniform(0, 0.1) * sr)
    while pos < n:
        for _ in range(int(rng.integers(2, 5))):
            hit = np.sin(2 * np.pi * f * t) * np.exp(-t / 0.015) * 2
            hit += _bandpass(rng.standard_normal(m), 1500, 6000, sr) * np.exp(-t / 0.003)
            _add_at(out, pos, hit)
            pos += int(sr / rng.uniform(6, 9))
        pos += int(rng.uniform(0.4, 0.9) * sr)
    return out


GENERATORS: tuple[Generator, ...] = (
    female_speech,
    male_speech,
    clapping,
    telephone,
    laughter,
    domestic,
    footsteps,
    door,
    music,
    instrument,
    water_tap,
    bell,
    knock,
)
assert len(GENERATORS) == len(CLASS_NAMES)


def generate_sound(class_idx: int, n_samples: int, rng: np.random.Generator, sample_rate: int = 24000) -> np.ndarray:
    """Render a dry mono event of one class.

    Args:
        class_idx: class index 0..12 (order of ``avseld.layout.CLASS_NAMES``).
        n_samples: length of the event in samples.
        rng: source of randomness (fixes the sound).
        sample_rate: in Hz.

    Returns:
        ``(n_samples,)`` float64 signal with unit RMS and 10-ms fades at both ends.
    """
    if not 0 <= class_idx < len(GENERATORS):
        raise ValueError(f"class_idx must be in 0..{len(GENERATORS) - 1}, got {class_idx}")
    x = np.asarray(GENERATORS[class_idx](rng, int(n_samples), sample_rate), dtype=np.float64)[:n_samples]
    fade = min(int(0.01 * sample_rate), len(x) // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x
