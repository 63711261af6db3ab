"""Decoding Multi-ACCDOA outputs as the baseline: threshold, 15-degree merge, atan2, cm, on-screen."""

import numpy as np
import pytest

from avseld.config import EvalConfig
from avseld.decode import decode_batch, decode_output, write_predictions
from avseld.dataset import read_label_csv
from avseld.layout import AUDIO_LAYOUT, AV_LAYOUT


def _out(tracks: dict, layout=AV_LAYOUT, n_frames: int = 3) -> np.ndarray:
    """Output with ``{(frame, track, class): (az_deg, dist_m, onscreen, length)}`` set."""
    out = np.zeros((n_frames, layout.dim), np.float32)
    for (f, n, k), (az, d, on, length) in tracks.items():
        out[f, layout.index(n, "x", k)] = length * np.cos(np.deg2rad(az))
        out[f, layout.index(n, "y", k)] = length * np.sin(np.deg2rad(az))
        out[f, layout.index(n, "distance", k)] = d
        if layout.has_onscreen:
            out[f, layout.index(n, "onscreen", k)] = on
    return out


def test_separate_tracks_are_kept_and_converted():
    out = _out({(0, 0, 3): (30.0, 1.234, 0.9, 0.9), (0, 1, 3): (-120.0, 2.5, 0.2, 0.8), (2, 2, 12): (10.4, 0.5, 1.0, 1.0)})
    rows = decode_output(out, layout=AV_LAYOUT, onscreen_decision="threshold")
    expected = [[0, 3, 0, 30, 123, 1], [0, 3, 0, -120, 250, 0], [2, 12, 0, 10, 50, 1]]
    np.testing.assert_array_equal(rows, expected)
    # the baseline truncates the on-screen probability: 0.9 -> 0, exactly 1.0 -> 1
    np.testing.assert_array_equal(decode_output(out, layout=AV_LAYOUT)[:, 5], [0, 0, 1])
    np.testing.assert_array_equal(decode_output(out, EvalConfig(onscreen_decision="threshold"), layout=AV_LAYOUT)[:, 5], [1, 0, 1])
    # the tuned threshold's last candidate, 1.0, writes every event off-screen (even p == 1.0)
    np.testing.assert_array_equal(decode_output(out, layout=AV_LAYOUT, onscreen_decision="threshold", onscreen_threshold=1.0)[:, 5],
                                  [0, 0, 0])


def test_inactive_tracks_are_dropped():
    out = _out({(0, 0, 1): (0.0, 1.0, 1.0, 0.49), (1, 0, 1): (0.0, 1.0, 1.0, 0.51)})
    rows = decode_output(out, layout=AV_LAYOUT)
    assert rows.shape == (1, 6) and rows[0, 0] == 1


def test_close_tracks_are_merged_like_the_baseline():
    # tracks 2 and 0 within 15 degrees (the "2 ~ 0" pair): track 1 written first, then the average of 2 and 0
    # with track 2's on-screen value
    out = _out({(0, 0, 5): (20.0, 1.0, 0.0, 0.9), (0, 1, 5): (-60.0, 3.0, 0.0, 0.9), (0, 2, 5): (30.0, 2.0, 1.0, 0.9)})
    rows = decode_output(out, layout=AV_LAYOUT, onscreen_decision="threshold")
    np.testing.assert_array_equal(rows, [[0, 5, 0, -60, 300, 0], [0, 5, 0, 25, 150, 1]])
    # all three close -> one averaged event with track 0's on-screen value
    out = _out({(0, 0, 5): (20.0, 1.0, 0.0, 0.9), (0, 1, 5): (26.0, 2.0, 1.0, 0.9), (0, 2, 5): (32.0, 3.0, 1.0, 0.9)})
    rows = decode_output(out, layout=AV_LAYOUT, onscreen_decision="threshold")
    np.testing.assert_array_equal(rows, [[0, 5, 0, 26, 200, 0]])
    # 16 degrees apart: kept separate
    out = _out({(0, 0, 5): (0.0, 1.0, 0.0, 0.9), (0, 1, 5): (16.0, 1.0, 0.0, 0.9)})
    assert len(decode_output(out, layout=AV_LAYOUT)) == 2


def test_audio_layout_has_no_onscreen_and_batches_match():
    out = _out({(1, 1, 0): (45.0, 1.0, 0.0, 1.0)}, layout=AUDIO_LAYOUT)
    np.testing.assert_array_equal(decode_output(out, layout=AUDIO_LAYOUT), [[1, 0, 0, 45, 100, 0]])
    batch = np.stack([out, out * 0])
    res = decode_batch(batch, layout=AUDIO_LAYOUT)
    assert len(res) == 2 and len(res[1]) == 0
    with pytest.raises(ValueError, match="width"):
        decode_output(np.zeros((50, 100), np.float32), layout=AV_LAYOUT)


def test_write_predictions_round_trip(tmp_path):
    out = _out({(0, 0, 3): (30.0, 1.234, 0.9, 0.9), (2, 2, 12): (-10.0, 0.5, 1.0, 1.0)})
    rows = decode_output(out, layout=AV_LAYOUT)
    write_predictions(tmp_path / "pred", {"clipA": rows, "clipB": rows[:0]})
    np.testing.assert_array_equal(read_label_csv(tmp_path / "pred" / "clipA.csv"), rows)
    assert read_label_csv(tmp_path / "pred" / "clipB.csv").shape == (0, 6)
