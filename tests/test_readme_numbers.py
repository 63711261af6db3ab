"""The README's study numbers are the study's files: every generated block equals its figures/ file."""

from pathlib import Path

import pytest

from avseld import readme

REPO = Path(__file__).resolve().parents[1]


def test_readme_blocks_equal_their_figures_files():
    text = (REPO / "README.md").read_text()
    names = readme.blocks(text)
    assert {"figures/table1.md", "figures/table1_differences.md", "figures/study_timings.md"} <= set(names)
    assert readme.stale_blocks() == [], "run `python -m avseld.readme` after a study"


def test_a_changed_figure_makes_its_block_stale(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "t.md").write_text("| a |\n|---|\n| 1.0 |\n")
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- figures/t.md -->\nold\n<!-- /figures/t.md -->\nend\n")
    assert readme.stale_blocks(doc, tmp_path) == ["figures/t.md"]
    assert readme.main(["--readme", str(doc)]) == 0
    assert "| 1.0 |" in doc.read_text() and readme.stale_blocks(doc, tmp_path) == []
    (tmp_path / "figures" / "t.md").write_text("| a |\n|---|\n| 2.0 |\n")
    assert readme.main(["--readme", str(doc), "--check"]) == 1
    (tmp_path / "figures" / "t.md").unlink()
    with pytest.raises(FileNotFoundError, match="figures/t.md"):
        readme.render(doc.read_text(), tmp_path)


def test_the_readmes_detectable_difference_is_the_tables():
    import re

    import pandas as pd

    text = (REPO / "README.md").read_text()
    stated = float(re.search(r"at most \*\*([\d.]+) points\*\* in this study", text).group(1))
    diffs = pd.read_csv(REPO / "figures" / "table1_differences.csv")
    systems = diffs[diffs["against"] == "Baseline replica"].iloc[:2]  # Table 1's systems, not the controls
    assert round(float(((systems["hi_F20"] - systems["lo_F20"]) / 2).max()), 1) == stated
