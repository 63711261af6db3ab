"""Render planned scenes to wav, mp4 and CSV files in the DCASE 2025 layout, with a process pool.

``generate_dataset(synth_cfg, out_dir, seed)`` writes::

    out_dir/stereo_dev/dev-train-synth/fold3_room{R}_mix{MMM}.wav   (and dev-test-synth/fold4_...)
    out_dir/video_dev/<same>/*.mp4
    out_dir/metadata_dev/<same>/*.csv
    out_dir/synth_info.json                                           (config, seed, counts)

Train rooms are numbered 1..n_train_rooms, test rooms after them, so rooms are disjoint by
construction. Every scene is planned in the parent process from the seed (cheap and ordered);
workers only render, each clip from its own seeds, so outputs do not depend on scheduling.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from avseld.atomic import atomic_path, write_text_atomic
from avseld.errors import ConfigError, DataError
from avseld.synth.room import Room, render_source, sample_room
from avseld.synth.scenes import Scene, plan_scene, scene_labels
from avseld.synth.sounds import generate_sound
from avseld.synth.video import CLASS_STYLE, OBJECT_SIZE_M, YUVCanvas, make_background, write_mp4

log = logging.getLogger(__name__)

TRAIN_SPLIT = "dev-train-synth"
TEST_SPLIT = "dev-test-synth"
OUTPUT_GAIN = 0.03  # waveform scale: a unit-RMS source at 1 m gives about -30 dBFS direct sound
INFO_FILE = "synth_info.json"
VISIBLE_MARGIN_S = 0.3  # an on-screen source is drawn from 0.3 s before its onset to 0.3 s after its offset


def room_for(seed: int, room_id: int, absorption: tuple[float, float]) -> Room:
    """The room ``room_id`` of the dataset made with ``seed``, wall absorption drawn from ``absorption``
    (``synth.absorption_range``); same seed, id and range: same room."""
    return sample_room(np.random.default_rng([seed, 7919, room_id]), tuple(absorption))


def plan_dataset(cfg, seed: int | None = None) -> list[Scene]:
    """Plan every clip of the dataset (no rendering).

    Args:
        cfg: a :class:`avseld.config.SynthConfig`.
        seed: dataset seed (default ``cfg.seed``).

    Returns:
        Scenes, train split first, in file-name order within each room.
    """
    seed = cfg.seed if seed is None else int(seed)
    if cfg.n_train_rooms < 1 or cfg.n_test_rooms < 1:
        raise ValueError("synth needs at least one train room and one test room")
    if not 1 <= cfg.max_polyphony <= 3:
        raise ValueError(f"synth.max_polyphony must be 1..3, got {cfg.max_polyphony}")
    if len(cfg.layer_probs) != 3 or not all(0.0 <= p <= 1.0 for p in cfg.layer_probs):
        raise ConfigError(f"config key synth.layer_probs: expected 3 probabilities in [0, 1], got {list(cfg.layer_probs)}")
    absorption = tuple(cfg.absorption_range)
    if len(absorption) != 2 or not 0.0 < absorption[0] <= absorption[1] < 1.0:
        raise ConfigError(f"config key synth.absorption_range: expected [low, high] within (0, 1), got {list(cfg.absorption_range)}")
    if cfg.video_width % 2 or cfg.video_height % 2:
        raise ValueError(f"synth video size must be even, got {cfg.video_width}x{cfg.video_height}")
    scenes = []
    layout = (
        (TRAIN_SPLIT, 3, list(range(1, cfg.n_train_rooms + 1)), cfg.n_train_clips),
        (TEST_SPLIT, 4, list(range(cfg.n_train_rooms + 1, cfg.n_train_rooms + cfg.n_test_rooms + 1)), cfg.n_test_clips),
    )
    for split, fold, room_ids, n_clips in layout:
        split_rng = np.random.default_rng([seed, fold])
        class_cycle: list[int] = []
        mix_count = {r: 0 for r in room_ids}
        for j in range(n_clips):
            room_id = room_ids[j % len(room_ids)]
            mix_count[room_id] += 1
            name = f"fold{fold}_room{room_id}_mix{mix_count[room_id]:03d}"
            scenes.append(
                plan_scene(
                    np.random.default_rng([seed, fold, room_id, mix_count[room_id], int(split_rng.integers(2**31))]),
                    name,
                    split,
                    room_id,
                    room_for(seed, room_id, absorption),
                    class_cycle,
                    duration_s=cfg.duration_s,
                    sample_rate=cfg.sample_rate,
                    video_width=cfg.video_width,
                    video_height=cfg.video_height,
                    video_fps=cfg.video_fps,
                    max_polyphony=cfg.max_polyphony,
                    layer_probs=tuple(cfg.layer_probs),
                    moving_prob=cfg.moving_prob,
                    same_class_prob=cfg.same_class_prob,
                    max_distractors=cfg.max_distractors,
                    noise_db_range=(cfg.noise_db_min, cfg.noise_db_max),
                    background_seed=int(np.random.default_rng([seed, 104729, room_id]).integers(2**31)),
                )
            )
    return scenes


def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / np.std(x)


def _event_dry(scene: Scene, ev) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(ev.seed)
    n = max(1, int(round((ev.offset_s - ev.onset_s) * scene.sample_rate)))
    return generate_sound(ev.class_idx, n, rng, scene.sample_rate) * 10 ** (ev.gain_db / 20.0), rng


def render_audio(scene: Scene, max_order: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """Render the stereo mixture of a scene.

    Returns:
        ``(2, N)`` float64 mixture in [-1, 1] and the dry signal of every event (for the video).
    """
    sr = scene.sample_rate
    n = int(round(scene.duration_s * sr))
    mix = np.zeros((2, n))
    drys = []
    for ev in scene.events:
        dry, rng = _event_dry(scene, ev)
        drys.append(dry)
        wet = render_source(scene.room, dry, ev.traj, sr, rng, max_order=max_order)
        start = int(round(ev.onset_s * sr))
        m = min(wet.shape[1], n - start)
        mix[:, start : start + m] += wet[:, :m]
    noise_rng = np.random.default_rng([scene.seed, 1])
    w = _pink_noise(noise_rng, n)
    y = _pink_noise(noise_rng, n) / np.sqrt(3.0)  # diffuse field: dipole energy 1/3 of the omni
    level = 10 ** (scene.noise_db / 20.0)
    mix += level * np.stack([0.5 * (w + y), 0.5 * (w - y)])
    mix *= OUTPUT_GAIN
    peak = np.max(np.abs(mix))
    if peak > 0.98:
        mix *= 0.98 / peak
    return mix, drys


def _envelope(dry: np.ndarray, onset_s: float, times: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """Short-time RMS of ``dry`` around each video time, normalised to [0, 1]."""
    half = max(1, int(sr / fps / 2))
    idx = np.round((times - onset_s) * sr).astype(int)
    csum = np.concatenate([[0.0], np.cumsum(dry**2)])
    lo = np.clip(idx - half, 0, len(dry))
    hi = np.clip(idx + half, 0, len(dry))
    rms = np.sqrt((csum[hi] - csum[lo]) / np.maximum(hi - lo, 1))
    return rms / (rms.max() + 1e-12)


def render_video(scene: Scene, drys: list[np.ndarray] | None = None) -> np.ndarray:
    """Draw the scene as seen by the camera.

    Sounding sources in view are drawn with their class's shape and colour, brightness following
    their loudness; silent distractors are drawn at constant brightness.

    Returns:
        ``(T, H * 3 / 2, W)`` uint8 yuv420p frames, T = round(duration * fps).
    """
    cam = scene.camera
    room = scene.room
    bg = make_background(
        cam, np.random.default_rng(scene.background_seed), room.dims[0] - room.mic[0], room.mic[2], room.dims[2]
    )
    base = YUVCanvas(bg)
    n_video = int(round(scene.duration_s * scene.video_fps))
    times = np.arange(n_video) / scene.video_fps
    f = cam.focal_px
    # per object: (visible mask (T,), positions (T, 3), brightness (T,), shape, rgb)
    objects = []
    for i, ev in enumerate(scene.events):
        vis = (times >= ev.onset_s - VISIBLE_MARGIN_S) & (times <= ev.offset_s + VISIBLE_MARGIN_S)
        if not vis.any():
            continue
        pos = ev.positions(times)
        if drys is not None:
            env = _envelope(drys[i], ev.onset_s, times, scene.sample_rate, scene.video_fps)
        else:
            env = np.ones(n_video)
        shape, rgb = CLASS_STYLE[ev.class_idx]
        objects.append((vis, pos, 0.55 + 0.45 * env, shape, np.asarray(rgb, dtype=np.float64)))
    for d in scene.distractors:
        pos = d.positions(times, scene.duration_s)
        if d.class_idx >= 0:
            shape, rgb = CLASS_STYLE[d.class_idx]
            rgb = np.asarray(rgb, dtype=np.float64)
        else:
            shape, rgb = d.shape, np.full(3, 170.0)
        objects.append((np.ones(n_video, bool), pos, np.full(n_video, 0.8), shape, rgb))
    frames = np.empty((n_video, cam.height * 3 // 2, cam.width), dtype=np.uint8)
    projected = []
    for vis, pos, bright, shape, rgb in objects:
        u, v, _ = cam.project(pos)
        dist = np.linalg.norm(pos, axis=1)
        projected.append((vis & np.isfinite(u), u, v, dist, bright, shape, rgb))
    for t in range(n_video):
        canvas = base.copy()
        todo = [(p[3][t], p) for p in projected if p[0][t]]
        for dist, (_, u, v, _, bright, shape, rgb) in sorted(todo, key=lambda x: -x[0]):
            r = max(2.0, f * OBJECT_SIZE_M / dist)
            if u[t] + r < 0 or u[t] - r > cam.width or v[t] + r < 0 or v[t] - r > cam.height:
                continue
            canvas.draw(u[t], v[t], r, shape, np.clip(rgb * bright[t], 0, 255))
        frames[t] = canvas.to_i420()
    return frames


def clip_paths(out_dir: Path, scene: Scene) -> tuple[Path, Path, Path]:
    """The wav, mp4 and csv paths of a scene under a dataset root."""
    return (
        out_dir / "stereo_dev" / scene.split / f"{scene.name}.wav",
        out_dir / "video_dev" / scene.split / f"{scene.name}.mp4",
        out_dir / "metadata_dev" / scene.split / f"{scene.name}.csv",
    )


def render_clip(scene: Scene, out_dir: str | Path, max_order: int = 3, codec: str = "libx264") -> dict:
    """Render one scene and write its three files atomically.

    Returns:
        Timing of the clip: ``{"name", "audio_s", "video_s", "write_s"}``.
    """
    import soundfile as sf

    from avseld.dataset import write_label_csv

    out_dir = Path(out_dir)
    wav, mp4, csv = clip_paths(out_dir, scene)
    t0 = time.perf_counter()
    audio, drys = render_audio(scene, max_order=max_order)
    t1 = time.perf_counter()
    frames = render_video(scene, drys)
    t2 = time.perf_counter()
    pcm = np.clip(np.round(audio.T * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(wav) as tmp:
        sf.write(str(tmp), pcm, scene.sample_rate, subtype="PCM_16", format="WAV")
    with atomic_path(mp4) as tmp:
        write_mp4(tmp, frames, scene.video_fps, codec=codec)
    write_label_csv(csv, scene_labels(scene))
    t3 = time.perf_counter()
    return {"name": scene.name, "audio_s": t1 - t0, "video_s": t2 - t1, "write_s": t3 - t2}


def _render_task(args: tuple) -> dict:
    scene, out_dir, max_order, codec = args
    return render_clip(scene, out_dir, max_order=max_order, codec=codec)


def _info(cfg, seed: int, scenes: list[Scene]) -> dict:
    d = asdict(cfg)
    d.pop("n_workers", None)  # does not change the data
    d["seed"] = seed
    return {
        "generator": "avseld.synth",
        "synth": d,
        "splits": {TRAIN_SPLIT: sum(s.split == TRAIN_SPLIT for s in scenes), TEST_SPLIT: sum(s.split == TEST_SPLIT for s in scenes)},
    }


def generate_dataset(
    cfg,
    out_dir: str | Path,
    seed: int | None = None,
    n_workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate the synthetic dataset in the DCASE 2025 layout.

    Clips whose three files already exist are kept when ``out_dir`` was made with the same
    config and seed (so an interrupted run resumes); a root made with another config is an
    error unless ``overwrite`` is set.

    Args:
        cfg: a :class:`avseld.config.SynthConfig`.
        out_dir: dataset root to write.
        seed: dataset seed (default ``cfg.seed``).
        n_workers: process-pool size (default ``cfg.n_workers``; 1 renders in this process).
        overwrite: regenerate every clip even if present.
        progress: show a tqdm bar.

    Returns:
        ``out_dir`` as a Path.
    """
    from tqdm.auto import tqdm

    seed = cfg.seed if seed is None else int(seed)
    n_workers = cfg.n_workers if n_workers is None else int(n_workers)
    out_dir = Path(out_dir)
    scenes = plan_dataset(cfg, seed)
    info = _info(cfg, seed, scenes)
    info_text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    info_path = out_dir / INFO_FILE
    if info_path.exists() and not overwrite and info_path.read_text() != info_text:
        raise DataError(
            f"{info_path}: the dataset there was generated with another synth config or seed; "
            "choose another --out or pass --overwrite"
        )
    todo = [s for s in scenes if overwrite or not all(p.exists() for p in clip_paths(out_dir, s))]
    log.info("synth: %d clips planned, %d to render, %d workers -> %s", len(scenes), len(todo), n_workers, out_dir)
    for split in (TRAIN_SPLIT, TEST_SPLIT):
        for top in ("stereo_dev", "video_dev", "metadata_dev"):
            (out_dir / top / split).mkdir(parents=True, exist_ok=True)
    tasks = [(s, out_dir, cfg.ism_max_order, cfg.video_codec) for s in todo]
    bar = tqdm(total=len(tasks), desc="synth", unit="clip", disable=not progress)
    t0 = time.perf_counter()
    if n_workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _render_task(task)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_render_task, tasks, chunksize=max(1, min(8, len(tasks) // (4 * n_workers)))):
                bar.update(1)
    bar.close()
    write_text_atomic(info_path, info_text)
    log.info("synth: rendered %d clips in %.1f s", len(tasks), time.perf_counter() - t0)
    return out_dir
