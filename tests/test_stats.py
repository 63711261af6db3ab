"""Dataset statistics: one summary (per split and over all) behind the CLI, validation and notebook 00."""

from __future__ import annotations

import numpy as np
import pytest

from avseld import stats
from avseld.dataset import write_label_csv
from avseld.errors import DataError

from _study_fakes import TEST_SPLIT, make_dataset


def test_split_table_and_label_table_agree(tmp_path):
    root = make_dataset(tmp_path / "synth_s", n_clips=3)
    labels = stats.load_labels(root)
    table = stats.label_table(labels)
    row = stats.split_table(stats.summarise_labels(labels)).iloc[0]
    assert row["clips"] == 3 and row["split"] == TEST_SPLIT
    assert row["label_rows"] == len(table) and 0 <= row["onscreen_share"] <= 1
    assert row["events"] == len(table.groupby(["clip", "class", "source"]))
    poly = table.groupby(["clip", "frame"]).size()
    assert row["max_polyphony"] == poly.max() >= 1 and row["mean_polyphony"] == pytest.approx(poly.mean())
    assert row["classes_present"] == table["class"].nunique()
    assert list(table.columns) == ["split", "clip", "frame", "class", "source", "azimuth", "distance", "onscreen",
                                   "class_name"]
    assert stats.dataset_summary(root)["splits"][TEST_SPLIT] == stats.summarise_labels(labels)["splits"][TEST_SPLIT]
    with pytest.raises(DataError):
        stats.load_labels(tmp_path / "empty_missing")
    with pytest.raises(DataError, match="no labelled clips"):
        stats.label_table({})


def test_label_statistics_counts():
    rows = np.array([[0, 1, 0, 10, 100, 1], [0, 1, 1, -20, 200, 0], [0, 3, 0, 5, 50, 0], [2, 1, 0, 12, 100, 1]], float)
    s = stats.label_statistics({"a": rows, "empty": np.zeros((0, 6))}, n_frames=4)
    assert (s["n_clips"], s["n_rows"], s["n_events"], s["empty_clips"]) == (2, 4, 3, 1)
    assert s["polyphony_counts"] == [6, 1, 0, 1]  # 8 clip-frames: 3 events in frame 0, 1 in frame 2
    assert (s["mean_polyphony"], s["max_polyphony"], s["classes_present"]) == (2.0, 3, 2)
    assert s["onscreen_share"] == 0.5 and s["onscreen_event_share"] == pytest.approx(1 / 3)


def test_summary_of_a_written_root_prints(tmp_path):
    root = make_dataset(tmp_path / "synth_p", n_clips=2)
    write_label_csv(root / "metadata_dev" / TEST_SPLIT / "fold4_room1_mix001.csv", np.zeros((0, 6)))
    text = stats.format_summary(stats.dataset_summary(root))
    assert "1 without events" in text and "polyphony" in text
