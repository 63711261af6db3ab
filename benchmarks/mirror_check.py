"""Dev-test scores of a trained run three ways, without writing anything into the run:

    python benchmarks/mirror_check.py RUN_DIR [RUN_DIR ...]

- ``best``: ``best.pt`` (what the study reports; equals the run's ``metrics.json``);
- ``last``: ``last.pt`` (whether the validation-selected checkpoint is what makes seeds differ);
- ``mirrored``: ``best.pt`` on the left-right mirrored dev-test (``avseld.augment.swap_left_right`` on the
  audio and visual features, reference azimuths negated with ``avseld.labels.mirror_labels``). A model
  that treats left and right alike scores the same on both; the left-right swap augmentation
  (``train.lr_swap``) assumes the data allow it.

One JSON line per run: F20, F20_on, DOAE, OSA of each (README, "How the recipe was chosen").
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


def scores(run_dir: Path) -> dict:
    import numpy as np
    import torch

    from avseld.augment import swap_left_right
    from avseld.batches import load_clip_arrays
    from avseld.cache import ensure_feature_cache
    from avseld.inference import evaluate, load_model, tuned_eval
    from avseld.labels import mirror_labels
    from avseld.runs import RunFolder

    run = RunFolder(run_dir)
    cfg = tuned_eval(run.path, run.read_config())
    cache_dir = ensure_feature_cache(cfg, Path(cfg.data.root), Path(cfg.data.cache_dir), need=["dev-test"])
    models = {which: load_model(run.path, which) for which in ("best", "last")}
    arrays = load_clip_arrays(cache_dir, "dev-test", need_video=models["best"].uses_video)
    grid = tuple(cfg.features.fullview_grid) if cfg.features.visual_mode == "fullview" else None
    audio, video, _ = swap_left_right(np.asarray(arrays.audio), None if arrays.video is None else np.asarray(arrays.video),
                                      None, tuple(cfg.features.audio_extra), grid)
    mirrored = dataclasses.replace(arrays, audio=audio, video=video,
                                   labels={k: mirror_labels(v) for k, v in arrays.labels.items()})
    out = {"run": run.path.name}
    for name, model, clips in (("best", models["best"], arrays), ("last", models["last"], arrays),
                               ("mirrored", models["best"], mirrored)):
        _, m, _ = evaluate(model, clips, cfg, torch.device("cpu"))
        out[name] = {k: round(float(m[k]), 4) for k in ("F20", "F20_on", "DOAE", "OSA")}
    return out


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    for rd in sys.argv[1:]:
        print(json.dumps(scores(Path(rd))))
