"""The study end to end: `avseld reproduce --profile smoke` into a temporary workdir, checked by content.

Also: the committed notebooks are thin and clean, and a failing cell names notebook and cell.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from avseld import pipeline, report

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
AVSELD = [sys.executable, "-m", "avseld"]


# --------------------------------------------------------------------------------------------
# The committed notebooks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", pipeline.NOTEBOOKS)
def test_notebook_sources_are_thin_and_clean(stem):
    nb = nbformat.read(str(NB_DIR / f"{stem}.ipynb"), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert all(k in first.source for k in ("**Purpose.**", "**Reads.**", "**Writes.**"))
    params = nb.cells[1]
    assert params.metadata.get("tags") == ["parameters"]
    names = [ln.split("=")[0].strip() for ln in params.source.splitlines()]
    assert names == ["profile", "workdir", "data_root", "seeds", "device"]
    assert all("# type: " in ln for ln in params.source.splitlines())
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert not any(ln.lstrip().startswith(("def ", "class ")) for ln in cell.source.splitlines())
            assert len([ln for ln in cell.source.splitlines() if ln.strip()]) <= 6  # short steps


def test_notebooks_are_what_the_builder_writes(tmp_path):
    subprocess.run([sys.executable, str(NB_DIR / "build_notebooks.py"), str(tmp_path)], check=True, capture_output=True)
    for stem in pipeline.NOTEBOOKS:
        assert (tmp_path / f"{stem}.ipynb").read_text() == (NB_DIR / f"{stem}.ipynb").read_text(), stem


def test_failing_cell_names_notebook_and_cell(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("y = x + 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom ' + str(y))"),
        nbformat.v4.new_code_cell("open('never', 'w')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(src / "00_bad.ipynb"))
    with pytest.raises(pipeline.NotebookError) as e:
        pipeline.run_study(tmp_path, {"x": 2}, notebooks=("00_bad",), src_dir=src)
    msg = str(e.value)
    assert "00_bad.ipynb" in msg and "cell" in msg and "ValueError: boom 3" in msg
    assert "raise ValueError" in msg
    assert (tmp_path / "notebooks" / "executed" / "00_bad.ipynb").is_file()
    assert not list(tmp_path.rglob("never"))  # the run stopped at the failing cell


def test_notebooks_import_the_installed_package_not_the_workdirs(tmp_path):
    """A workdir that is another clone (it has an ``avseld/`` folder) must not shadow the running code."""
    decoy = tmp_path / "avseld"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the workdir copy was imported')\n")
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import avseld, pathlib\n"
                                  "pathlib.Path(workdir, 'imported_from.txt').write_text(avseld.__file__)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(src / "00_import.ipynb"))
    pipeline.run_study(tmp_path, {}, notebooks=("00_import",), src_dir=src)
    import avseld

    assert (tmp_path / "imported_from.txt").read_text() == avseld.__file__


# --------------------------------------------------------------------------------------------
# avseld reproduce --profile smoke
# --------------------------------------------------------------------------------------------

FIGURES = ("dataset_statistics.png", "clip_example.png", "training_curves.png", "training_curves_baseline.png",
           "training_curves_avseld.png", "classwise_f20.png", "trajectories.png", "onscreen_confusion.png",
           "table1.png", "ablations.png", "table1.csv", "table1.md", "ablations.csv", "ablations.md",
           "azimuth_agreement.csv", "azimuth_agreement.md", "table1_differences.csv", "table1_differences.md",
           "seeds_and_differences.png", "convergence.csv", "convergence.md", "ablation_differences.csv",
           "ablation_differences.md")


@pytest.fixture(scope="module")
def smoke(smoke_study):
    """The session's smoke study (tests/conftest.py; the browser test reads the same one)."""
    return smoke_study


@pytest.mark.slow
def test_reproduce_smoke_writes_everything(smoke):
    workdir, log = smoke
    for i, stem in enumerate(pipeline.NOTEBOOKS):
        assert f"[{i + 1}/7] {stem} done in" in log
        nb = nbformat.read(str(workdir / "notebooks" / "executed" / f"{stem}.ipynb"), as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], stem
        # no warning the project causes, no terminal progress bar as stderr text (notebooks get widget bars)
        stderr = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.get("name") == "stderr")
        assert "Warning" not in stderr and "clip/s]" not in stderr, (stem, stderr[:300])
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), stem
        if stem not in ("01_feature_caching",):  # every other notebook shows at least one figure
            assert any("image/png" in o.get("data", {}) for o in outputs), stem  # 06: the explorer's picture
    figs = workdir / "figures"
    for name in FIGURES:
        assert (figs / name).is_file() and (figs / name).stat().st_size > 200, name
    assert len(list(figs.glob("attention_*.png"))) == 3
    diffs = pd.read_csv(figs / "table1_differences.csv")
    # each system against the replica, AV-SELD+ against AV-SELD, then each video system's controls against itself
    assert diffs["against"].tolist()[:3] == ["Baseline replica"] * 2 + ["AV-SELD"]
    assert diffs["system"].tolist()[:3] == ["AV-SELD", "AV-SELD+", "AV-SELD+"]
    assert {"AV-SELD, video zeroed", "AV-SELD+, video of another clip"} <= set(diffs["system"])
    assert (diffs["lo_F20"] <= diffs["d_F20"]).all() and (diffs["d_F20"] <= diffs["hi_F20"]).all()
    conv = pd.read_csv(figs / "convergence.csv")
    assert len(conv) == 5 and conv["last_quarter_gain"].notna().all()  # Table 1's 3 runs and the 2 ablations
    azimuth = pd.read_csv(figs / "azimuth_agreement.csv")  # 3 Table-1 systems + 2 ablations, seed 0 each
    assert len(azimuth) == 5 and {"Baseline replica", "audio only", "+ full-view tokens"} <= set(azimuth["system"])
    assert not list(figs.glob(".*.tmp*"))
    for d in ("data/synth_smoke/stereo_dev", "data/cache", "data/runs"):
        assert (workdir / d).is_dir(), d
    explorer = nbformat.read(str(workdir / "notebooks" / "executed" / "06_attention_explorer.ipynb"), as_version=4)
    widget_out = [o for c in explorer.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_out, "the explorer widget is displayed"


@pytest.mark.slow
def test_table1_cells_are_recomputed_from_saved_predictions(smoke):
    workdir, _ = smoke
    table = report.read_table1(workdir / "figures" / "table1.csv")
    assert list(table.columns) == list(report.TABLE1_COLUMNS)
    assert table["source"].tolist() == ["published"] * 3 + ["this study"] * 3
    assert table["system"].tolist()[3:] == ["Baseline replica", "AV-SELD", "AV-SELD+"]
    assert table.loc[0, ["F20_on", "DOAE", "RDE", "OSA"]].tolist() == [20.0, 23.8, 40.0, 80.0]
    for _, row in table.iloc[3:].iterrows():
        runs = row["runs"].split(";")
        assert len(runs) == int(row["n_seeds"]) == 1
        per_run = []
        for rel in runs:
            run = workdir / rel
            rec = json.loads((run / "metrics.json").read_text())
            # what `avseld evaluate` prints for the run's saved predictions (folders relative to the workdir)
            proc = subprocess.run([*AVSELD, "evaluate", "--ref", rec["ref_dir"], "--pred", rec["pred_dir"], "--json"],
                                  capture_output=True, text=True, check=True, cwd=workdir)
            per_run.append(report.to_report_units(json.loads(proc.stdout)))
        for k in report.METRIC_KEYS:
            expected = float(np.mean([m[k] for m in per_run]))
            if np.isnan(expected):
                assert np.isnan(row[k]), (row["system"], k)
            else:
                assert row[k] == pytest.approx(expected, rel=1e-12, abs=1e-12), (row["system"], k)
    md = (workdir / "figures" / "table1.md").read_text()
    assert "| Official Baseline | published | 20.0 | 23.8 | 40.0 | 80.0 |" in md


@pytest.mark.slow
def test_rerun_skips_finished_runs(smoke):
    workdir, _ = smoke
    runs = sorted((workdir / "data" / "runs").iterdir())
    before = {r.name: (r / "metrics.json").stat().st_mtime_ns for r in runs}
    proc = subprocess.run([*AVSELD, "reproduce", "--profile", "smoke", "--workdir", str(workdir), "--only", "02,03"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/2] 02_baseline_replication done" in proc.stderr and "[2/2] 03_avseld_training done" in proc.stderr
    after = {r.name: (r / "metrics.json").stat().st_mtime_ns for r in sorted((workdir / "data" / "runs").iterdir())}
    assert after == before  # same run ids, nothing retrained
