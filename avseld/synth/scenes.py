"""Scene sampling: which events happen when, where they are, how they move, and their labels.

A scene is planned entirely from random numbers before anything is rendered, so that the plan
(and therefore the label CSV) is cheap, deterministic and independent of the process pool.
Events are laid out on up to three "layers" (the first always busy, the others sparser), which
gives the polyphony mix of the real data: mostly one or two events, sometimes three.
Labels follow SPEC section 1: azimuth folded to the front, distance in centimetres, on-screen
from the true 3-D position seen by the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avseld.layout import LABEL_HOP_S, N_CLASSES
from avseld.metrics.scoring import fold_azimuth  # noqa: F401  (the metric owns it; re-exported)
from avseld.synth.room import Room
from avseld.synth.video import Camera

# per-class event duration range in seconds
DURATION_RANGE_S: tuple[tuple[float, float], ...] = (
    (1.0, 3.0),  # female speech
    (1.0, 3.0),  # male speech
    (1.0, 2.5),  # clapping
    (1.5, 3.5),  # telephone
    (0.8, 2.5),  # laughter
    (2.0, 4.5),  # domestic
    (1.5, 3.5),  # footsteps
    (0.6, 1.4),  # door
    (2.0, 4.5),  # music
    (1.5, 3.5),  # instrument
    (1.5, 4.5),  # water tap
    (1.0, 3.0),  # bell
    (0.5, 1.5),  # knock
)
# ((first onset range), (gap range)) per polyphony layer; whether a layer is used in a clip is drawn
# with the probabilities of ``synth.layer_probs``
LAYERS = (((0.0, 0.8), (0.2, 1.5)), ((0.0, 2.5), (0.5, 2.5)), ((0.3, 3.5), (1.0, 4.0)))
LAYER_PROBS = (1.0, 0.75, 0.35)
TRAJ_STEP_S = 0.1  # spacing of the stored trajectory points
MIN_DISTANCE_M = 0.5
MAX_DISTANCE_M = 5.0


@dataclass(frozen=True)
class Event:
    """One sound event: its class, instance id, time span, level and trajectory.

    ``traj`` holds mic-relative positions ``(n_pos, 3)`` evenly spaced from onset to offset
    (one row for a static source).
    """

    class_idx: int
    source_id: int
    onset_s: float
    offset_s: float
    gain_db: float
    traj: np.ndarray
    seed: int

    def positions(self, t: np.ndarray) -> np.ndarray:
        """Mic-relative positions ``(n, 3)`` at times ``t (n,)`` (clamped to the event span)."""
        t = np.clip(np.asarray(t, dtype=np.float64), self.onset_s, self.offset_s)
        if len(self.traj) == 1:
            return np.repeat(self.traj, len(t), axis=0)
        grid = np.linspace(self.onset_s, self.offset_s, len(self.traj))
        return np.stack([np.interp(t, grid, self.traj[:, k]) for k in range(3)], axis=1)


@dataclass(frozen=True)
class Distractor:
    """A silent visible object: a shape (a class look-alike when ``class_idx`` >= 0) on a trajectory."""

    class_idx: int
    shape: str
    traj: np.ndarray  # (n_pos, 3) over the whole clip

    def positions(self, t: np.ndarray, duration_s: float) -> np.ndarray:
        grid = np.linspace(0.0, duration_s, len(self.traj))
        return np.stack([np.interp(t, grid, self.traj[:, k]) for k in range(3)], axis=1)


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one clip and write its labels."""

    name: str
    split: str
    room_id: int
    room: Room
    events: tuple[Event, ...]
    distractors: tuple[Distractor, ...]
    noise_db: float
    seed: int
    background_seed: int = 0  # the room's look (same room, same background)
    duration_s: float = 5.0
    sample_rate: int = 24000
    video_width: int = 320
    video_height: int = 180
    video_fps: float = 29.97

    @property
    def camera(self) -> Camera:
        return Camera(self.video_width, self.video_height)


def spherical_to_rel(az_deg: float, el_deg: float, dist_m: float) -> np.ndarray:
    """Mic-relative Cartesian position (x forward, y left, z up) of a direction and distance."""
    a, e = np.deg2rad(az_deg), np.deg2rad(el_deg)
    return dist_m * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])


def _trajectory(rng: np.random.Generator, room: Room, duration_s: float, moving: bool) -> np.ndarray:
    az = rng.uniform(-180.0, 180.0)
    el = rng.uniform(-25.0, 25.0)
    direction = spherical_to_rel(az, el, 1.0)
    d_max = min(MAX_DISTANCE_M, room.max_distance(direction))
    dist = rng.uniform(MIN_DISTANCE_M, max(MIN_DISTANCE_M + 0.1, d_max))
    if not moving:
        return room.clip_inside(spherical_to_rel(az, el, dist)[None])
    n = max(2, int(np.ceil(duration_s / TRAJ_STEP_S)) + 1)
    t = np.linspace(0.0, duration_s, n)
    omega = rng.choice([-1.0, 1.0]) * rng.uniform(10.0, 45.0)  # deg/s
    radial = rng.uniform(-0.3, 0.3)  # m/s
    dists = np.clip(dist + radial * t, MIN_DISTANCE_M, MAX_DISTANCE_M)
    pts = np.stack([spherical_to_rel(az + omega * tt, el, d) for tt, d in zip(t, dists)])
    return room.clip_inside(pts)


def plan_scene(
    rng: np.random.Generator,
    name: str,
    split: str,
    room_id: int,
    room: Room,
    class_cycle: list[int],
    *,
    duration_s: float = 5.0,
    sample_rate: int = 24000,
    video_width: int = 320,
    video_height: int = 180,
    video_fps: float = 29.97,
    max_polyphony: int = 3,
    layer_probs: tuple[float, ...] = LAYER_PROBS,
    moving_prob: float = 0.35,
    same_class_prob: float = 0.15,
    max_distractors: int = 3,
    noise_db_range: tuple[float, float] = (-42.0, -28.0),
    background_seed: int = 0,
) -> Scene:
    """Draw one scene.

    Args:
        rng: the scene's random generator.
        name, split, room_id, room: where the clip goes and the room it is recorded in.
        class_cycle: classes to draw from, consumed from the front (keeps classes balanced
            across a split); refilled with a random permutation when empty.
        duration_s ... video_fps: clip format.
        max_polyphony: number of layers (at most 3 events at once).
        layer_probs: probability that each layer has events in the clip (first, second, third).
        moving_prob: probability that an event moves.
        same_class_prob: probability that an overlapping event copies the class of one it overlaps.
        max_distractors: silent visible objects per clip (0..max).
        noise_db_range: background noise level relative to a unit-RMS source at 1 m.
        background_seed: seed of the room's background picture.
    """
    spans: list[tuple[float, float, int, int]] = []  # onset, offset, class, layer
    for layer, ((first_range, gap_range), p_use) in enumerate(zip(LAYERS[:max_polyphony], layer_probs)):
        if rng.random() >= p_use:
            continue
        t = rng.uniform(*first_range)
        while t < duration_s - 0.3:
            overlapping = [s for s in spans if s[0] < t + 0.5 and s[1] > t]
            if overlapping and rng.random() < same_class_prob:
                cls = overlapping[int(rng.integers(len(overlapping)))][2]
            else:
                if not class_cycle:
                    class_cycle.extend(int(c) for c in rng.permutation(N_CLASSES))
                cls = class_cycle.pop(0)
            dur = rng.uniform(*DURATION_RANGE_S[cls])
            off = min(duration_s, t + dur)
            spans.append((t, off, cls, layer))
            t = off + rng.uniform(*gap_range)
    spans.sort()
    events = []
    counts = np.zeros(N_CLASSES, dtype=int)
    for onset, offset, cls, _ in spans:
        moving = rng.random() < moving_prob
        events.append(
            Event(
                class_idx=int(cls),
                source_id=int(counts[cls]),
                onset_s=float(onset),
                offset_s=float(offset),
                gain_db=float(rng.uniform(-6.0, 3.0)),
                traj=_trajectory(rng, room, offset - onset, moving),
                seed=int(rng.integers(2**31)),
            )
        )
        counts[cls] += 1
    distractors = []
    for _ in range(int(rng.integers(0, max_distractors + 1))):
        az = rng.uniform(-45.0, 45.0)
        el = rng.uniform(-20.0, 20.0)
        d = rng.uniform(MIN_DISTANCE_M + 0.5, max(MIN_DISTANCE_M + 0.6, min(MAX_DISTANCE_M, room.max_distance(spherical_to_rel(az, el, 1.0)))))
        drift = rng.uniform(-8.0, 8.0) if rng.random() < 0.5 else 0.0  # deg/s
        pts = np.stack([spherical_to_rel(az + drift * t, el, d) for t in (0.0, duration_s)])
        lookalike = rng.random() < 0.5
        cls = int(rng.integers(N_CLASSES)) if lookalike else -1
        shape = "" if lookalike else str(rng.choice(["circle", "square", "triangle", "diamond", "wide", "tall"]))
        distractors.append(Distractor(class_idx=cls, shape=shape, traj=room.clip_inside(pts)))
    return Scene(
        name=name,
        split=split,
        room_id=room_id,
        room=room,
        events=tuple(events),
        distractors=tuple(distractors),
        noise_db=float(rng.uniform(*noise_db_range)),
        seed=int(rng.integers(2**31)),
        background_seed=background_seed,
        duration_s=duration_s,
        sample_rate=sample_rate,
        video_width=video_width,
        video_height=video_height,
        video_fps=video_fps,
    )


def scene_labels(scene: Scene) -> np.ndarray:
    """The label array of a scene (SPEC section 1 conventions).

    An event is active in label frame k when it covers at least half of [k hop, (k+1) hop);
    its azimuth, distance and on-screen flag are taken at the frame centre (inside the event).

    Returns:
        ``(n_rows, 6)`` float64: frame, class, source, folded azimuth (deg), distance (cm), onscreen.
    """
    n_frames = int(round(scene.duration_s / LABEL_HOP_S))
    starts = np.arange(n_frames) * LABEL_HOP_S
    camera = scene.camera
    rows = []
    for ev in scene.events:
        overlap = np.minimum(starts + LABEL_HOP_S, ev.offset_s) - np.maximum(starts, ev.onset_s)
        frames = np.nonzero(overlap >= 0.5 * LABEL_HOP_S - 1e-9)[0]
        if len(frames) == 0:
            continue
        pos = ev.positions(starts[frames] + 0.5 * LABEL_HOP_S)
        az = fold_azimuth(np.rad2deg(np.arctan2(pos[:, 1], pos[:, 0])))
        dist_cm = np.linalg.norm(pos, axis=1) * 100.0
        on = camera.onscreen(pos)
        for k, f in enumerate(frames):
            rows.append([f, ev.class_idx, ev.source_id, np.round(az[k]), np.round(dist_cm[k]), float(on[k])])
    if not rows:
        return np.zeros((0, 6))
    return np.asarray(rows, dtype=np.float64)
