"""The synthetic generator: physics with numbers, projection, labels, determinism and format."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from avseld.config import SynthConfig
from avseld.dataset import discover_clips, read_label_csv, read_video_frames
from avseld.validate import validate_dataset
from avseld.layout import CLASS_NAMES, N_CLASSES
from avseld.synth import TEST_SPLIT, TRAIN_SPLIT, generate_dataset, plan_dataset
from avseld.synth.generate import render_video
from avseld.synth.room import Room, early_rir, late_tail, render_source, tail_start_s
from avseld.synth.scenes import Event, Scene, fold_azimuth, scene_labels, spherical_to_rel
from avseld.synth.sounds import generate_sound
from avseld.synth.video import CLASS_STYLE, Camera, write_mp4

SR = 24000
ROOM = Room(dims=(8.0, 7.0, 3.0), absorption=0.35, mic=(4.0, 3.5, 1.5))
TINY = SynthConfig(
    n_train_rooms=2, n_test_rooms=1, n_train_clips=2, n_test_clips=1,
    video_width=64, video_height=36, video_fps=10.0, n_workers=1,
)


def _ild_db(az_deg: float, dist_m: float = 1.0, el_deg: float = 0.0) -> float:
    dry = np.random.default_rng(0).standard_normal(SR // 2)
    wet = render_source(ROOM, dry, spherical_to_rel(az_deg, el_deg, dist_m)[None], SR, np.random.default_rng(1))
    return float(10 * np.log10(np.sum(wet[0] ** 2) / np.sum(wet[1] ** 2)))


def test_source_on_the_left_is_louder_in_the_left_channel():
    assert _ild_db(60.0) > 3.0
    assert _ild_db(-60.0) < -3.0


def test_level_difference_grows_with_azimuth_and_is_mirrored_for_rear_sources():
    front = [_ild_db(az) for az in (0.0, 20.0, 45.0, 70.0)]
    assert abs(front[0]) < 0.5
    assert all(b > a + 0.5 for a, b in zip(front, front[1:])), front
    for az, ild in zip((20.0, 45.0, 70.0), front[1:]):
        rear = _ild_db(180.0 - az)  # folds to az: same level difference
        assert abs(rear - ild) < 1.0, (az, rear, ild)
        assert abs(_ild_db(-az) + ild) < 1.0  # right-left symmetry


def _direct_to_reverberant_db(dist_m: float) -> tuple[float, float]:
    early = early_rir(ROOM, spherical_to_rel(30.0, 0.0, dist_m), SR, 3)
    tail = late_tail(ROOM, np.random.default_rng(0), SR, tail_start_s(ROOM, 3))
    d = int(round(dist_m / 343.0 * SR))
    direct = float(np.sum(early[:, d] ** 2))
    total = float(np.sum(early**2) + np.sum(tail**2))
    return 10 * np.log10(direct / (total - direct)), 10 * np.log10(total)


def test_farther_source_is_quieter_and_more_reverberant():
    drr_near, level_near = _direct_to_reverberant_db(0.7)
    drr_far, level_far = _direct_to_reverberant_db(3.0)
    assert level_far < level_near - 2.0
    assert drr_far < drr_near - 6.0
    # Sabine: the diffuse energy does not depend on the distance, the direct one falls 1/r^2,
    # so the DRR difference is close to 20 log10(3.0 / 0.7) = 12.6 dB
    assert abs((drr_near - drr_far) - 20 * np.log10(3.0 / 0.7)) < 3.0


def test_rt60_and_moving_source_render_finite():
    assert 0.1 < ROOM.rt60_s < 1.0
    traj = np.stack([spherical_to_rel(a, 0.0, 2.0) for a in np.linspace(-40, 40, 11)])
    wet = render_source(ROOM, np.random.default_rng(0).standard_normal(SR), traj, SR, np.random.default_rng(1))
    assert wet.shape[0] == 2 and wet.shape[1] >= SR and np.isfinite(wet).all()
    # the source sweeps from right (-40) to left (+40): first half right-heavy, second half left-heavy
    half = SR // 2
    assert np.sum(wet[0, :half] ** 2) < np.sum(wet[1, :half] ** 2)
    assert np.sum(wet[0, half:SR] ** 2) > np.sum(wet[1, half:SR] ** 2)


def test_fold_azimuth_and_onscreen_of_rear_sources():
    np.testing.assert_allclose(fold_azimuth([0, 60, 120, 180, -120, -180, 270]), [0, 60, 60, 0, -60, 0, -90])
    cam = Camera(320, 180)
    rel = np.stack([spherical_to_rel(a, 0.0, 2.0) for a in (10.0, 170.0, 49.0, 51.0, -49.0)])
    assert cam.onscreen(rel).tolist() == [True, False, True, False, True]


def _single_event_scene(az: float, dist: float, cls: int) -> Scene:
    ev = Event(class_idx=cls, source_id=0, onset_s=0.0, offset_s=5.0, gain_db=0.0,
               traj=spherical_to_rel(az, 0.0, dist)[None], seed=1)
    return Scene(name="fold3_room1_mix001", split=TRAIN_SPLIT, room_id=1, room=ROOM, events=(ev,), distractors=(),
                 noise_db=-40.0, seed=0, video_width=192, video_height=108, video_fps=10.0)


def test_drawn_object_is_at_the_projected_azimuth(tmp_path):
    for az, cls in ((20.0, 3), (-35.0, 2)):
        scene = _single_event_scene(az, 2.0, cls)
        frames = render_video(scene)
        path = tmp_path / f"v{cls}.mp4"
        write_mp4(path, frames, scene.video_fps)
        rgb = read_video_frames(path, fps=10.0, n_frames=50)[10].astype(int)
        colour = np.array(CLASS_STYLE[cls][1])
        mask = np.abs(rgb - colour).sum(axis=2) < 60
        assert mask.sum() > 20
        ys, xs = np.nonzero(mask)
        u, v, on = scene.camera.project(spherical_to_rel(az, 0.0, 2.0)[None])
        assert on[0]
        assert abs(xs.mean() + 0.5 - u[0]) < 3.0, (az, xs.mean(), u[0])
        assert abs(ys.mean() + 0.5 - v[0]) < 3.0
        # and the label says on-screen with the right azimuth and distance
        rows = scene_labels(scene)
        assert len(rows) == 50 and (rows[:, 5] == 1).all() and (rows[:, 3] == az).all() and (rows[:, 4] == 200).all()


def test_labels_onscreen_flags_follow_the_projection():
    cfg = SynthConfig(n_train_rooms=2, n_test_rooms=1, n_train_clips=12, n_test_clips=4, video_width=320, video_height=180)
    n_checked = 0
    for scene in plan_dataset(cfg, seed=3):
        rows = scene_labels(scene)
        for ev in scene.events:
            sel = (rows[:, 1] == ev.class_idx) & (rows[:, 2] == ev.source_id)
            pos = ev.positions(rows[sel, 0] * 0.1 + 0.05)
            np.testing.assert_array_equal(rows[sel, 5] == 1, scene.camera.onscreen(pos))
            true_az = np.rad2deg(np.arctan2(pos[:, 1], pos[:, 0]))
            np.testing.assert_allclose(rows[sel, 3], np.round(fold_azimuth(true_az)))
            n_checked += int(sel.sum())
    assert n_checked > 500


def test_default_statistics_match_the_real_data():
    cfg = SynthConfig(n_train_rooms=8, n_test_rooms=3, n_train_clips=120, n_test_clips=40)
    scenes = plan_dataset(cfg, seed=0)
    poly = np.zeros(4)
    onscreen, n_rows = 0.0, 0
    classes = {TRAIN_SPLIT: set(), TEST_SPLIT: set()}
    same_class_overlap = 0
    for s in scenes:
        rows = scene_labels(s)
        counts = np.bincount(rows[:, 0].astype(int), minlength=50)
        assert counts.max() <= 3
        poly += np.bincount(counts, minlength=4)
        onscreen += rows[:, 5].sum()
        n_rows += len(rows)
        classes[s.split] |= set(rows[:, 1].astype(int).tolist())
        same_class_overlap += int((rows[:, 2] > 0).any())
    poly /= poly.sum()
    assert classes[TRAIN_SPLIT] == classes[TEST_SPLIT] == set(range(N_CLASSES))
    assert 0.15 < onscreen / n_rows < 0.4  # about one in four
    assert poly[1] + poly[2] > 0.65 and 0.01 < poly[3] < 0.15
    assert same_class_overlap > 0
    assert not {s.room_id for s in scenes if s.split == TRAIN_SPLIT} & {s.room_id for s in scenes if s.split == TEST_SPLIT}


def test_sound_classes_have_distinct_spectra():
    rng = np.random.default_rng(0)
    specs = []
    for c in range(N_CLASSES):
        x = generate_sound(c, 2 * SR, rng, SR)
        assert x.shape == (2 * SR,) and np.isfinite(x).all()
        assert abs(np.sqrt(np.mean(x**2)) - 1.0) < 1e-6
        p = np.abs(np.fft.rfft(x)) ** 2
        bands = np.array_split(p, 48)
        specs.append(10 * np.log10(np.array([b.sum() for b in bands]) + 1e-9))
    specs = np.array(specs) - np.array(specs).mean(axis=1, keepdims=True)
    for i in range(N_CLASSES):
        for j in range(i + 1, N_CLASSES):
            assert np.sqrt(np.mean((specs[i] - specs[j]) ** 2)) > 2.0, (CLASS_NAMES[i], CLASS_NAMES[j])


def test_generation_is_deterministic_and_in_the_dcase_format(tmp_path):
    a = generate_dataset(TINY, tmp_path / "a", seed=5, progress=False)
    b = generate_dataset(TINY, tmp_path / "b", seed=5, progress=False)
    c = generate_dataset(TINY, tmp_path / "c", seed=6, progress=False)
    clips = discover_clips(a)
    assert [x.split for x in clips] == [TEST_SPLIT, TRAIN_SPLIT, TRAIN_SPLIT]
    for clip in clips:
        assert re.fullmatch(r"fold[34]_room\d+_mix\d{3}", clip.name)
        assert clip.name.startswith("fold3" if clip.split.startswith("dev-train") else "fold4")
        for sub, ext in (("stereo_dev", "wav"), ("metadata_dev", "csv")):
            rel = f"{sub}/{clip.split}/{clip.name}.{ext}"
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        info = sf.info(str(clip.wav))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (24000, 2, "PCM_16", 120000)
        read_label_csv(clip.csv)
        assert read_video_frames(clip.mp4).shape == (50, 36, 64, 3)
    assert (a / "stereo_dev" / TRAIN_SPLIT / f"{clips[1].name}.wav").read_bytes() != (
        c / "stereo_dev" / TRAIN_SPLIT / f"{clips[1].name}.wav"
    ).read_bytes()
    assert {x.room for x in clips if x.split == TRAIN_SPLIT}.isdisjoint({x.room for x in clips if x.split == TEST_SPLIT})
    report = validate_dataset(a, progress=False)
    assert report.ok, report.problems


def test_synth_command_resumes_and_refuses_another_config(tmp_path, capsys):
    from avseld.cli import main

    args = ["synth", "--profile", "smoke", "--out", str(tmp_path / "d"), "--workers", "1", "--seed", "2",
            "--set", "synth.n_train_clips=1", "--set", "synth.n_test_clips=1", "--set", "synth.video_width=64",
            "--set", "synth.video_height=36", "--set", "synth.video_fps=10.0"]
    assert main(args) == 0
    assert "clips per split" in capsys.readouterr().out
    wav = next((tmp_path / "d" / "stereo_dev" / TRAIN_SPLIT).glob("*.wav"))
    mtime = wav.stat().st_mtime_ns
    assert main(args) == 0  # same config: nothing to redo
    assert wav.stat().st_mtime_ns == mtime
    assert main(args[:-2] + ["--set", "synth.video_fps=15.0"]) == 2
    assert "another synth config" in capsys.readouterr().err


def _polyphony_shares(cfg: SynthConfig) -> np.ndarray:
    poly = np.zeros(4)
    for s in plan_dataset(cfg, seed=0):
        counts = np.bincount(scene_labels(s)[:, 0].astype(int), minlength=50)
        poly += np.bincount(counts, minlength=4)[:4]
    return poly / poly.sum()


def test_layer_probs_set_the_polyphony():
    small = dict(n_train_rooms=2, n_test_rooms=1, n_train_clips=40, n_test_clips=20)
    mono = _polyphony_shares(SynthConfig(**small, layer_probs=(1.0, 0.0, 0.0)))
    assert mono[2] == mono[3] == 0  # one layer: never two events at once
    busy = _polyphony_shares(SynthConfig(**small, layer_probs=(1.0, 1.0, 1.0)))
    calm = _polyphony_shares(SynthConfig(**small, layer_probs=(1.0, 0.3, 0.1)))
    assert busy[2] + busy[3] > calm[2] + calm[3] + 0.15 and busy[3] > calm[3]
    with pytest.raises(Exception, match="synth.layer_probs"):
        plan_dataset(SynthConfig(**small, layer_probs=(1.0, 2.0, 0.0)), seed=0)


def test_absorption_range_sets_the_reverberation():
    from avseld.synth.generate import room_for

    live = [room_for(0, r, (0.25, 0.3)) for r in range(1, 9)]
    dead = [room_for(0, r, (0.7, 0.75)) for r in range(1, 9)]
    assert all(0.25 <= x.absorption <= 0.3 for x in live) and all(0.7 <= x.absorption <= 0.75 for x in dead)
    assert all(d.dims == lv.dims for d, lv in zip(dead, live))  # same rooms, other walls
    assert max(x.rt60_s for x in dead) < min(x.rt60_s for x in live)
    with pytest.raises(Exception, match="synth.absorption_range"):
        plan_dataset(SynthConfig(absorption_range=(0.5, 1.2)), seed=0)
