"""The run folder: the one place that knows a training run's id and files (written by the engine,
read by the study, the report, the figures, the command line and the tests' fakes).

``<runs_root>/<run_id>/``::

    config.yaml                       the resolved config
    model_args.json                   the model's name and exact constructor arguments
    checkpoints/best.pt, last.pt      weights-only checkpoints (:mod:`avseld.checkpoint`)
    log.jsonl                         one JSON record per epoch, epochs numbered from 1
    tensorboard/
    onscreen_threshold.json           the tuned on-screen threshold (when tuned)
    predictions/<name>/<clip>.csv     DCASE CSVs (``<name>``: :func:`prediction_name`)
    metrics.json, metrics_<name>.json scores and provenance (:func:`metrics_name`)

A metrics record names the folders it was scored on relative to the workdir (``ref_dir``, ``pred_dir``)
and the workdir relative to the run folder (``workdir``), so a moved workdir is re-scored from it;
records of older runs (absolute ``ref_dir`` and ``pred_dir``, no ``workdir``) are read as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avseld.atomic import write_json_atomic, write_text_atomic
from avseld.errors import ConfigError, DataError

CONFIG = "config.yaml"
LOG = "log.jsonl"
TUNED_THRESHOLD = "onscreen_threshold.json"
MODEL_ARGS = "model_args.json"

# keys left out of the run hash: they change where or how fast a run goes, not what it computes
_HASH_EXCLUDE = {("train", "seed"), ("train", "device"), ("train", "num_workers"), ("train", "num_threads"),
                 ("features", "device"), ("features", "batch_frames"), ("synth", "n_workers")}


def run_id(cfg: Any, seed: int) -> str:
    """The run id ``<model>-<hash>-s<seed>`` of a resolved config (``avseld train`` and the study alike).

    The hash covers everything that changes what a run computes (data, synth, features, model,
    train, eval, the feature extraction code's version) and leaves out the seed (in the name),
    devices, worker counts, the cache and runs folders and the report section.
    """
    from avseld.cache import FEATURE_CODE_VERSION, LABEL_CODE_VERSION

    from avseld.config import hashable_dict

    d = hashable_dict(cfg.to_dict())
    d = {k: v for k, v in d.items() if k in ("data", "synth", "features", "model", "train", "eval")}
    for section, key in _HASH_EXCLUDE:
        d[section].pop(key, None)
    d["data"] = {k: v for k, v in d["data"].items() if k not in ("cache_dir", "runs_dir")}
    d["features_code"] = FEATURE_CODE_VERSION  # new extraction code: new features, new runs
    if LABEL_CODE_VERSION != 1:  # new label code: new targets, new runs (1 adds nothing, as in the cache key)
        d["labels_code"] = LABEL_CODE_VERSION
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return f"{cfg.model.name}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}-s{seed}"


def prediction_name(split: str, video_control: str | None = None, onscreen_decision: str | None = None) -> str:
    """The folder under ``<run>/predictions/`` of a split: ``<split>``, then ``.video-<control>`` and
    ``.onscreen-<rule>`` for a control."""
    name = split
    if video_control is not None:
        name += f".video-{video_control}"
    if onscreen_decision is not None:
        name += f".onscreen-{onscreen_decision}"
    return name


def metrics_name(prediction: str) -> str:
    """The scores file of a prediction folder: ``metrics.json`` for dev-test, else ``metrics_<name>.json``."""
    return "metrics.json" if prediction == "dev-test" else f"metrics_{prediction}.json"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON ``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _plain_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments in their JSON form (tuples as lists)."""
    return json.loads(json.dumps(kwargs))


def relative_to(path: str | Path, base: str | Path | None) -> str:
    """``path`` relative to ``base`` when it lies under it, else its resolved absolute path; POSIX
    separators either way. With ``base`` None, ``path`` as given. The one rule for every path that a
    record or a table prints (metrics.json, Table 1's ``runs``, the convergence and azimuth tables)."""
    if base is None:
        return Path(path).as_posix()
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder (which need not exist yet).

    Attributes:
        path: the folder ``<runs_root>/<run_id>``.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def model_args_path(self) -> Path:
        return self.path / MODEL_ARGS

    @property
    def threshold_path(self) -> Path:
        return self.path / TUNED_THRESHOLD

    def checkpoint(self, which: str = "best") -> Path:
        """``checkpoints/<which>.pt`` (``best`` or ``last``)."""
        return self.path / "checkpoints" / f"{which}.pt"

    def predictions(self, name: str = "dev-test") -> Path:
        """``predictions/<name>/`` (``name``: :func:`prediction_name`)."""
        return self.path / "predictions" / name

    def metrics_path(self, name: str = "dev-test") -> Path:
        """The scores file of the prediction folder ``name``."""
        return self.path / metrics_name(name)

    # ---- state -------------------------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        """Finished: its dev-test metrics record and predictions exist."""
        return self.metrics_path().is_file() and (self.path / "predictions").is_dir()

    @property
    def is_started(self) -> bool:
        """Started: a checkpoint or a log line was written."""
        return self.checkpoint("last").is_file() or self.log_path.is_file()

    def clear_progress(self) -> None:
        """Remove the log and the TensorBoard events (a run restarting from scratch)."""
        self.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.tensorboard_dir, ignore_errors=True)

    # ---- config and log ------------------------------------------------------------------------

    def read_config(self) -> Any:
        """The run's resolved :class:`avseld.config.Config` (:class:`DataError` when there is none)."""
        from avseld.config import load_config_file

        if not self.config_path.is_file():
            raise DataError(f"{self.path}: not a run folder (no {CONFIG})")
        return load_config_file(self.config_path)

    def save_config(self, cfg: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        cfg.save(self.config_path)

    def save_model_args(self, name: str, kwargs: dict[str, Any]) -> None:
        """Write the model's name and exact constructor arguments (``model_args.json``)."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.model_args_path, {"model": name, "args": _plain_args(kwargs)})

    def read_model_args(self) -> tuple[str, dict[str, Any]] | None:
        """``(model name, constructor arguments)`` of the model the run trained: ``model_args.json``,
        or the best checkpoint's for runs older than that file; None when the run has neither."""
        if self.model_args_path.is_file():
            rec = json.loads(self.model_args_path.read_text())
            return rec["model"], rec["args"]
        if self.checkpoint("best").is_file():
            from avseld.checkpoint import load_checkpoint

            ckpt = load_checkpoint(self.checkpoint("best"))
            return ckpt["model_name"], _plain_args(ckpt["model_kwargs"])
        return None

    def check_model(self, cfg: Any, model_name: str) -> None:
        """Raise :class:`ConfigError` when the run trained another model than ``cfg`` builds now.

        The run id hashes the config, not the arguments a variant adds to it, so a finished run keeps
        its id when a variant's design changes (AV-SELD+ dropping its level-difference channel did):
        reusing it would report the old model under the new name. The data-given ``in_channels`` and
        ``visual_shape`` are taken from the run.
        """
        from avseld.models import resolve_model_args

        stored = self.read_model_args()
        if stored is None:
            return
        name, args = stored
        now = _plain_args(resolve_model_args(cfg, model_name, in_channels=args.get("in_channels"),
                                             visual_shape=args.get("visual_shape")))
        if name != model_name or now != args:
            diff = ", ".join(f"{k}={args.get(k)!r} (now {now.get(k)!r})" for k in sorted(set(args) | set(now))
                             if args.get(k) != now.get(k))
            raise ConfigError(f"{self.path}: this finished run trained '{name}' with {diff or 'other arguments'}, "
                              f"not the '{model_name}' the current code builds under the same run id; move or "
                              "delete the folder to train it again")

    def read_log(self, required: bool = False) -> list[dict]:
        """The epoch records of ``log.jsonl`` (none when there is no file, or :class:`DataError` if ``required``)."""
        if not self.log_path.is_file():
            if required:
                raise DataError(f"{self.log_path}: run has no training log")
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def append_log(self, record: dict) -> None:
        """Add one epoch record (non-finite values as ``null``), rewriting the file atomically."""
        lines = [json.dumps(r, allow_nan=True) for r in self.read_log()] + [json.dumps(json_safe(record), allow_nan=True)]
        write_text_atomic(self.log_path, "\n".join(lines) + "\n")

    def truncate_log(self, last_epoch: int) -> None:
        """Drop the records of epochs after ``last_epoch`` (those a resumed checkpoint does not hold)."""
        lines = [r for r in self.read_log() if r.get("epoch", 0) <= last_epoch]
        write_text_atomic(self.log_path, "".join(json.dumps(r) + "\n" for r in lines))

    # ---- predictions and metrics ---------------------------------------------------------------

    def write_predictions(self, name: str, predictions: dict[str, np.ndarray]) -> Path:
        """Replace ``predictions/<name>/`` by one DCASE CSV per clip (written aside, then swapped in)."""
        from avseld.decode import write_predictions

        pred_dir = self.predictions(name)
        pred_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp.", dir=pred_dir.parent))
        write_predictions(tmp, predictions)
        if pred_dir.exists():
            shutil.rmtree(pred_dir)
        os.replace(tmp, pred_dir)
        return pred_dir

    def folder_fields(self, name: str, ref_dir: str | Path, workdir: str | Path) -> dict[str, str]:
        """The ``ref_dir``, ``pred_dir`` and ``workdir`` fields of a metrics record: the reference and
        prediction folders relative to ``workdir``, the workdir relative to this folder (each absolute
        when it does not lie under the other)."""
        workdir = Path(workdir).resolve()
        run = self.path.resolve()
        try:
            run.relative_to(workdir)
            up = os.path.relpath(workdir, run)
        except ValueError:
            up = str(workdir)
        return {"ref_dir": relative_to(ref_dir, workdir), "pred_dir": relative_to(self.predictions(name), workdir),
                "workdir": Path(up).as_posix()}

    def write_metrics(self, name: str, record: dict) -> Path:
        """Write a metrics record (non-finite values as ``null``) atomically; returns its path."""
        path = self.metrics_path(name)
        write_json_atomic(path, json_safe(record))
        return path

    def read_metrics(self, name: str = "dev-test") -> dict:
        """A metrics record (:class:`DataError` naming a missing file)."""
        path = self.metrics_path(name)
        if not path.is_file():
            raise DataError(f"{path}: run has no metrics record (not finished?)")
        return json.loads(path.read_text())

    def workdir(self, record: dict | None = None) -> Path | None:
        """The workdir a metrics record names (None for a record of an older run, which names none)."""
        record = self.read_metrics() if record is None else record
        if "workdir" not in record:
            return None
        w = Path(record["workdir"])
        return w if w.is_absolute() else Path(os.path.normpath(self.path.resolve() / w))

    def scored_folders(self, split: str | None = None) -> tuple[Path, Path]:
        """The (reference, prediction) folders the dev-test record was scored on.

        The reference folder may be flat or a folder of split folders (``metadata_dev/``), as
        :func:`avseld.metrics.evaluate_folders` accepts.

        Args:
            split: a prediction folder name to use instead of the recorded one.
        """
        m = self.read_metrics()
        workdir = self.workdir(m)
        bases = (workdir,) if workdir is not None else (self.path, self.path.parent.parent.parent, Path.cwd())
        pred = self.predictions(split) if split else _resolve(m["pred_dir"], bases)
        ref = _resolve(m["ref_dir"], bases)
        for p in (ref, pred):
            if not p.is_dir():
                raise DataError(f"{p}: folder recorded by {self.metrics_path()} does not exist")
        return ref, pred


def _resolve(p: str | Path, bases: tuple[Path, ...]) -> Path:
    """An absolute ``p`` as it is; a relative one under the first base holding it (else the first)."""
    p = Path(p)
    if p.is_absolute():
        return p
    for b in bases:
        if (b / p).exists():
            return b / p
    return bases[0] / p


def is_finished(run_dir: str | Path) -> bool:
    """:attr:`RunFolder.is_finished` of ``run_dir``."""
    return RunFolder(Path(run_dir)).is_finished
