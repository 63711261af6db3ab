"""Reverberant stereo rendering for a coincident left/right cardioid pair in a shoebox room.

Early reflections come from the image-source method of pyroomacoustics (Allen & Berkley 1979;
Scheibler et al., ICASSP 2018): every image source gets the cardioid gain of each microphone
for its direction of arrival, its wall damping and its 1/(4 pi r) spreading loss. The late
reverberation is a diffuse, exponentially decaying noise tail whose level follows Sabine's
diffuse-field theory (energy 1/(pi R) with room constant R = S a / (1 - a), decay set by the
Sabine RT60), split into the omnidirectional part W and the left-right dipole part Y of the
diffuse field (energies 1 and 1/3), so that the two cardioids L = (W + Y)/2 and R = (W - Y)/2
have the physical diffuse-field coherence of 0.5. Direct-to-reverberant ratio, level and
inter-channel level difference are therefore all physical cues of distance and direction.

Coordinates are relative to the microphone: x forward (the camera axis), y left, z up;
azimuth = atan2(y, x) in degrees (+90 left), elevation from the horizontal plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

SPEED_OF_SOUND = 343.0  # m/s


@dataclass(frozen=True)
class Room:
    """A shoebox room with the listener (microphone pair and camera) at ``mic``.

    Attributes:
        dims: room size (length along x, width along y, height), metres.
        absorption: energy absorption coefficient of every wall, 0..1.
        mic: microphone (and camera) position in room coordinates, metres; it faces +x.
    """

    dims: tuple[float, float, float]
    absorption: float
    mic: tuple[float, float, float]

    @property
    def volume(self) -> float:
        return float(np.prod(self.dims))

    @property
    def surface(self) -> float:
        lx, ly, lz = self.dims
        return 2.0 * (lx * ly + lx * lz + ly * lz)

    @property
    def rt60_s(self) -> float:
        """Sabine reverberation time."""
        return 0.161 * self.volume / (self.surface * self.absorption)

    @property
    def room_constant(self) -> float:
        """R = S a / (1 - a), square metres."""
        return self.surface * self.absorption / (1.0 - self.absorption)

    def max_distance(self, direction: np.ndarray, margin: float = 0.3) -> float:
        """Largest distance from the mic along a unit ``direction`` that stays ``margin`` inside the walls."""
        mic = np.asarray(self.mic)
        dims = np.asarray(self.dims)
        best = np.inf
        for d, m, size in zip(direction, mic, dims):
            if d > 1e-9:
                best = min(best, (size - margin - m) / d)
            elif d < -1e-9:
                best = min(best, (m - margin) / -d)
        return float(best)

    def clip_inside(self, rel: np.ndarray, margin: float = 0.3) -> np.ndarray:
        """Clip mic-relative positions ``(n, 3)`` so that they stay inside the room."""
        mic = np.asarray(self.mic)
        lo = margin - mic
        hi = np.asarray(self.dims) - margin - mic
        return np.clip(rel, lo, hi)


def sample_room(rng: np.random.Generator, absorption: tuple[float, float]) -> Room:
    """Draw a room: 4.5-10 m by 4-9 m by 2.6-3.8 m, wall absorption uniform in ``absorption``,
    listener near the centre."""
    dims = (float(rng.uniform(4.5, 10.0)), float(rng.uniform(4.0, 9.0)), float(rng.uniform(2.6, 3.8)))
    mic = (
        float(dims[0] * rng.uniform(0.4, 0.6)),
        float(dims[1] * rng.uniform(0.4, 0.6)),
        float(rng.uniform(1.2, 1.7)),
    )
    return Room(dims=dims, absorption=float(rng.uniform(*absorption)), mic=mic)


def cardioid_gains(directions: np.ndarray) -> np.ndarray:
    """Gains of the left (+y) and right (-y) cardioids for unit arrival ``directions (n, 3)``.

    Returns:
        ``(2, n)``: row 0 left = (1 + u_y)/2, row 1 right = (1 - u_y)/2.
    """
    uy = directions[:, 1]
    return np.stack([0.5 * (1.0 + uy), 0.5 * (1.0 - uy)])


def early_rir(room: Room, rel_pos: np.ndarray, sample_rate: int, max_order: int) -> np.ndarray:
    """Direct sound and early reflections by the image-source method.

    Args:
        room: the room.
        rel_pos: source position relative to the mic, ``(3,)`` metres.
        sample_rate: Hz.
        max_order: highest reflection order.

    Returns:
        ``(2, L)`` impulse responses (left, right), integer-sample delays; the direct path of a
        source at 1 m has amplitude 1 (the 1/(4 pi r) law scaled by 4 pi).
    """
    import pyroomacoustics as pra

    mic = np.asarray(room.mic)
    src = room.clip_inside(np.asarray(rel_pos, dtype=np.float64)[None], margin=0.05)[0] + mic
    shoebox = pra.ShoeBox(
        list(room.dims), fs=sample_rate, materials=pra.Material(room.absorption), max_order=max_order,
        air_absorption=False,
    )
    shoebox.add_source(src.tolist())
    shoebox.add_microphone(mic.tolist())
    shoebox.image_source_model()
    source = shoebox.sources[0]
    images = source.images.T - mic[None]  # (n, 3) relative to the mic
    damping = source.damping[0]
    visible = shoebox.visibility[0][0].astype(bool) if shoebox.visibility is not None else np.ones(len(images), bool)
    images, damping = images[visible], damping[visible]
    dist = np.maximum(np.linalg.norm(images, axis=1), 0.05)
    gains = cardioid_gains(images / dist[:, None]) * (damping / dist)[None]
    delays = np.round(dist / SPEED_OF_SOUND * sample_rate).astype(int)
    out = np.zeros((2, int(delays.max()) + 1))
    np.add.at(out[0], delays, gains[0])
    np.add.at(out[1], delays, gains[1])
    return out


def late_tail(room: Room, rng: np.random.Generator, sample_rate: int, start_s: float, max_len_s: float = 0.6) -> np.ndarray:
    """Diffuse late reverberation for the left/right cardioids (see the module docstring).

    Args:
        room: the room (its RT60 and room constant set the decay and level).
        rng: noise source.
        sample_rate: Hz.
        start_s: time at which the tail takes over from the image sources.
        max_len_s: truncation of the tail (it is ~40 dB down by then in the rooms drawn).

    Returns:
        ``(2, L)`` impulse responses on the same scale as :func:`early_rir` (zero before ``start_s``).
    """
    rt60 = room.rt60_s
    n = int(min(max(rt60, start_s + 0.05), max_len_s + start_s) * sample_rate)
    t = np.arange(n) / sample_rate
    decay = np.exp(-6.9078 * t / rt60)  # amplitude falls 60 dB in rt60
    # total diffuse energy 1/(pi R) on the 4 pi-scaled omni axis: (4 pi)^2 / (16 pi^2) * 16 pi / R / (4 pi) ...
    # i.e. energy ratio to a 1-m direct path = 16 pi / R; the part after start_s is exp(-13.8 start/rt60)
    total = 16.0 * np.pi / room.room_constant
    n0 = int(start_s * sample_rate)
    ramp = np.clip((np.arange(n) - n0) / max(1, int(0.005 * sample_rate)), 0.0, 1.0)
    env = decay * ramp
    w = rng.standard_normal(n) * env
    y = rng.standard_normal(n) * env / np.sqrt(3.0)
    energy_per_unit = np.sum(env**2)  # E[w^2] summed over the tail
    target = total * np.exp(-13.8155 * start_s / rt60)
    scale = np.sqrt(target / energy_per_unit) if energy_per_unit > 0 else 0.0
    w *= scale
    y *= scale
    return np.stack([0.5 * (w + y), 0.5 * (w - y)])


def tail_start_s(room: Room, max_order: int) -> float:
    """When the image sources of ``max_order`` stop being dense enough: ~ order x mean room size / c."""
    return max(0.02, max_order * float(np.mean(room.dims)) / SPEED_OF_SOUND * 0.8)


def render_source(
    room: Room,
    dry: np.ndarray,
    rel_positions: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    max_order: int = 3,
    hop_s: float = 0.2,
) -> np.ndarray:
    """Render a (possibly moving) source at the stereo microphone pair.

    A moving source is rendered segment by segment: the dry signal is cut with Hann windows of
    ``2 * hop_s`` at 50 % overlap (they sum to one), each piece is convolved with the early
    response at the source position of the window centre, and the pieces are overlap-added;
    the diffuse tail does not depend on the position and is applied once.

    Args:
        room: the room.
        dry: ``(N,)`` dry signal.
        rel_positions: ``(N_pos, 3)`` positions relative to the mic, evenly spaced over the signal
            (1 row = static source).
        sample_rate: Hz.
        rng: noise source of the diffuse tail.
        max_order: image-source order.
        hop_s: crossfade hop for moving sources.

    Returns:
        ``(2, N + L - 1)`` wet signal (left, right).
    """
    n = len(dry)
    rel_positions = np.atleast_2d(rel_positions)
    t0 = tail_start_s(room, max_order)
    tail = late_tail(room, rng, sample_rate, t0)
    moving = len(rel_positions) > 1 and np.ptp(rel_positions, axis=0).max() > 0.02
    if not moving:
        rir = early_rir(room, rel_positions[0], sample_rate, max_order)
        length = max(rir.shape[1], tail.shape[1])
        h = np.zeros((2, length))
        h[:, : rir.shape[1]] += rir
        h[:, : tail.shape[1]] += tail
        return sps.oaconvolve(dry[None], h, axes=1)
    hop = max(1, int(hop_s * sample_rate))
    win = np.hanning(2 * hop + 1)[:-1]  # periodic Hann: overlapped copies sum to one
    centres = np.arange(0, n + hop, hop)
    pos_t = np.linspace(0, n - 1, len(rel_positions))
    early_parts = []
    max_len = 0
    for c in centres:
        p = np.array([np.interp(c, pos_t, rel_positions[:, k]) for k in range(3)])
        rir = early_rir(room, p, sample_rate, max_order)
        early_parts.append(rir)
        max_len = max(max_len, rir.shape[1])
    out = np.zeros((2, n + max(max_len, tail.shape[1]) + 4 * hop))
    padded = np.concatenate([np.zeros(hop), dry, np.zeros(2 * hop)])  # index shift by hop
    for c, rir in zip(centres, early_parts):
        seg = padded[c : c + 2 * hop] * win  # window centred on sample c of the dry signal
        wet = sps.oaconvolve(seg[None], rir, axes=1)
        out[:, c : c + wet.shape[1]] += wet
    out = out[:, hop:]  # undo the shift
    out[:, : n + tail.shape[1] - 1] += sps.oaconvolve(dry[None], tail, axes=1)
    return out[:, : n + max(max_len, tail.shape[1]) - 1]
