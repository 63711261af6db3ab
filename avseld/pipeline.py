"""Runs the study's notebooks 00-06 in order with papermill (the one-command reproduction).

Executed copies go under ``<workdir>/notebooks/executed/``; a failing cell stops the run with an
error naming the notebook and the cell. The kernel is the Python running this code (the
``python3`` kernel spec resolves to ``sys.executable``), so no user-level kernel install is needed.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from avseld.errors import AvseldError

log = logging.getLogger(__name__)

NOTEBOOKS: tuple[str, ...] = (
    "00_data_exploration",
    "01_feature_caching",
    "02_baseline_replication",
    "03_avseld_training",
    "04_ablations",
    "05_results",
    "06_attention_explorer",
)


class NotebookError(AvseldError):
    """A notebook cell failed; the message names the notebook, the cell and the error."""


def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (sources, committed without outputs)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def _failed_cell(nb_path: Path) -> tuple[int | None, str]:
    """Index (in the notebook) and first source line of the cell that raised, from an executed copy."""
    import nbformat

    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:  # noqa: BLE001 - best effort for the message only
        return None, ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            return i, first
    return None, ""


def run_notebook(src: Path, dst: Path, parameters: dict[str, Any], cwd: Path | None = None,
                 kernel_name: str = "python3", timeout_s: int | None = None) -> float:
    """Execute one notebook with papermill; return its wall time in seconds.

    Raises:
        NotebookError: naming the notebook, the failing cell (index and first line) and the error.
    """
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src), str(dst), parameters=parameters, kernel_name=kernel_name, cwd=str(cwd or dst.parent),
            progress_bar=False, log_output=False, execution_timeout=timeout_s,
        )
    except pm.PapermillExecutionError as e:
        idx, first = _failed_cell(dst)
        where = f"cell {idx}" if idx is not None else f"execution count {e.exec_count}"
        raise NotebookError(
            f"{src.name}: {where} failed ({first.strip()!r}): {e.ename}: {e.evalue}  [executed copy: {dst}]"
        ) from None
    return time.perf_counter() - t0


def run_study(workdir: str | Path, parameters: dict[str, Any], notebooks: tuple[str, ...] = NOTEBOOKS,
              src_dir: Path | None = None, out_dir: Path | None = None, kernel_name: str = "python3") -> dict[str, float]:
    """Run the notebooks in order, writing executed copies; one progress line per notebook.

    Args:
        workdir: the study's workdir (every notebook's ``workdir`` parameter).
        parameters: papermill parameters (``profile``, ``seeds``, ``device``, ...); ``workdir`` is added.
        notebooks: notebook stems to run, in order.
        src_dir: folder of the source notebooks (default: the repository's ``notebooks/``).
        out_dir: executed copies (default ``<workdir>/notebooks/executed``).

    Returns:
        ``{notebook: seconds}``.
    """
    workdir = Path(workdir).resolve()
    src_dir = src_dir or notebooks_dir()
    out_dir = out_dir or workdir / "notebooks" / "executed"
    params = {**parameters, "workdir": str(workdir)}
    times: dict[str, float] = {}
    for i, stem in enumerate(notebooks):
        src = src_dir / f"{stem}.ipynb"
        if not src.is_file():
            raise NotebookError(f"{src}: notebook not found")
        _progress(f"[{i + 1}/{len(notebooks)}] {stem} ...")
        # the kernel runs in the executed copies' folder, not the workdir: a workdir that is another
        # clone of this repository would otherwise put its own avseld/ first on the kernel's sys.path
        secs = run_notebook(src, out_dir / f"{stem}.ipynb", params, cwd=out_dir, kernel_name=kernel_name)
        times[stem] = secs
        _progress(f"[{i + 1}/{len(notebooks)}] {stem} done in {secs:.1f} s")
    return times


def write_timings(figures_dir: str | Path, steps: dict[str, float], total_s: float,
                  since_start_s: float | None = None) -> Path:
    """Write ``study_timings.{csv,md}``: seconds per step of this ``avseld reproduce`` (steps of an
    earlier invocation that this one did not run are kept), the invocation's total, and, when given,
    the time since the surrounding command began (``make reproduce``: the install included)."""
    import pandas as pd

    from avseld.atomic import write_text_atomic

    figures_dir = Path(figures_dir)
    path = figures_dir / "study_timings.csv"
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["step", "seconds"])
    rows = {r.step: float(r.seconds) for r in old.itertuples()}
    rows.update(steps)
    rows["avseld reproduce (this invocation)"] = total_s
    if since_start_s is not None:
        rows["make reproduce (install included)"] = since_start_s
    df = pd.DataFrame({"step": list(rows), "seconds": list(rows.values())})
    figures_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, df.to_csv(index=False, float_format="%.1f"))
    lines = ["| step | wall time |", "|---|---|"]
    lines += [f"| {r.step} | {int(r.seconds // 60)} min {r.seconds % 60:.0f} s ({r.seconds:.0f} s) |" for r in df.itertuples()]
    write_text_atomic(figures_dir / "study_timings.md", "\n".join(lines) + "\n")
    return path


def _progress(line: str) -> None:
    log.info(line)
    if not logging.getLogger("avseld").handlers and not logging.getLogger().handlers:
        sys.stderr.write(line + "\n")
