"""Dataset reading and validation: audio/video loaders, timestamp sampling, broken-clip reports."""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from avseld.config import SynthConfig
from avseld.dataset import (
    DataError,
    discover_clips,
    format_label_csv,
    load_audio,
    parse_label_csv_text,
    read_video_frames,
)
from avseld.validate import validate_dataset
from avseld.synth import TEST_SPLIT, TRAIN_SPLIT, generate_dataset

SMALL = SynthConfig(
    n_train_rooms=2, n_test_rooms=1, n_train_clips=5, n_test_clips=1,
    video_width=64, video_height=36, video_fps=10.0, n_workers=1,
)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    return generate_dataset(SMALL, tmp_path_factory.mktemp("synth") / "root", seed=0, progress=False)


def test_load_audio_reads_stereo_and_refuses_bad_files(tmp_path):
    x = (np.random.default_rng(0).standard_normal((1000, 2)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "ok.wav", x, 24000, subtype="PCM_16")
    a = load_audio(tmp_path / "ok.wav")
    assert a.shape == (2, 1000) and a.dtype == np.float32
    np.testing.assert_allclose(a, x.T, atol=1e-4)
    sf.write(tmp_path / "mono.wav", x[:, 0], 24000)
    sf.write(tmp_path / "rate.wav", x, 48000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    for name, words in (("mono.wav", "channels"), ("rate.wav", "48000"), ("bad.wav", "cannot decode"), ("none.wav", "does not exist")):
        with pytest.raises(DataError, match=words) as e:
            load_audio(tmp_path / name)
        assert name in str(e.value)


def _write_counting_video(path, fps: float, n: int) -> None:
    """A video whose flat colour names the frame index i: red 8 (i mod 32), green 40 (i div 32)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = 32, 16, "yuv420p"
        for i in range(n):
            img = np.zeros((16, 32, 3), np.uint8)
            img[..., 0], img[..., 1] = 8 * (i % 32), 40 * (i // 32)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize("fps,n", [(15.0, 75), (30000 / 1001, 150)])
def test_read_video_frames_samples_by_timestamp(tmp_path, fps, n):
    path = tmp_path / "v.mp4"
    _write_counting_video(path, fps, n)
    frames = read_video_frames(path, fps=10.0, n_frames=50)
    assert frames.shape == (50, 16, 32, 3) and frames.dtype == np.uint8
    expected = np.floor(np.arange(50) / 10.0 * fps + 1e-6).astype(int)  # last frame with pts <= k / 10
    got = np.round(frames[:, 8, 16, 0] / 8.0).astype(int) + 32 * np.round(frames[:, 8, 16, 1] / 40.0).astype(int)
    np.testing.assert_array_equal(got, expected)


def test_read_video_frames_pads_a_frame_but_refuses_short_or_broken_videos(tmp_path):
    _write_counting_video(tmp_path / "almost.mp4", 10.0, 49)
    frames = read_video_frames(tmp_path / "almost.mp4")
    assert np.array_equal(frames[49], frames[48])
    _write_counting_video(tmp_path / "short.mp4", 10.0, 40)
    with pytest.raises(DataError, match="short.mp4: video too short"):
        read_video_frames(tmp_path / "short.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match="junk.mp4"):
        read_video_frames(tmp_path / "junk.mp4")
    with pytest.raises(DataError, match="does not exist"):
        read_video_frames(tmp_path / "none.mp4")


def test_csv_round_trip():
    rows = np.array([[0, 3, 0, -20, 150, 1], [0, 3, 1, 45, 300, 0], [7, 12, 0, 90, 51, 0]], dtype=float)
    np.testing.assert_array_equal(parse_label_csv_text(format_label_csv(rows)), rows)


def test_validate_dataset_summarises_a_clean_root(small_root):
    report = validate_dataset(small_root, progress=False)
    assert report.ok, report.problems
    s = report.summary
    assert s["clips_per_split"] == {TRAIN_SPLIT: 5, TEST_SPLIT: 1}
    assert s["all"]["n_clips"] == 6 and sum(s["all"]["events_per_class"]) == s["all"]["n_events"] > 0
    assert -90 <= s["all"]["azimuth_range"][0] <= s["all"]["azimuth_range"][1] <= 90
    assert 50 <= s["all"]["distance_range_cm"][0]
    assert "polyphony" in report.format()


def test_validate_data_reports_every_broken_clip(small_root, tmp_path, capsys):
    from avseld.cli import main

    root = tmp_path / "broken"
    shutil.copytree(small_root, root)
    clips = [c for c in discover_clips(root) if c.split == TRAIN_SPLIT]
    c_corrupt, c_mono, c_novideo, c_badcsv, c_short = clips
    c_corrupt.wav.write_bytes(b"RIFF" + b"\x01" * 500)
    sf.write(c_mono.wav, np.zeros(120000, np.float32), 24000, subtype="PCM_16")
    c_novideo.mp4.unlink()
    with open(c_badcsv.csv, "a") as f:
        f.write("3,15,0,10,100,1\n4,2,0,abc,100,0\n")
    sf.write(c_short.wav, np.zeros((24000, 2), np.float32), 24000, subtype="PCM_16")
    orphan = root / "metadata_dev" / TRAIN_SPLIT / "fold3_room9_mix999.csv"
    shutil.copy(c_short.csv, orphan)
    (root / "stereo_dev" / "dev-train-empty").mkdir()
    rc = main(["validate-data", str(root)])
    out = capsys.readouterr().out
    assert rc == 1
    n_lines = len(c_badcsv.csv.read_text().splitlines())
    expected = [
        f"{c_corrupt.wav}: cannot decode audio",
        f"{c_mono.wav}: expected 2 audio channels, got 1",
        f"{c_novideo.wav}: no matching video",
        f"{c_badcsv.csv}: line {n_lines - 1}: class must be in 0..12",
        f"{c_badcsv.csv}: line {n_lines}: column 'azimuth' must be a number",
        f"{c_short.wav}: expected 120000 samples",
        f"{orphan}: no matching audio",
        "dev-train-empty: split folder has no wav files",
    ]
    for e in expected:
        assert e in out, e
    assert "Traceback" not in out
    assert main(["validate-data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: dataset root does not exist" in capsys.readouterr().err
