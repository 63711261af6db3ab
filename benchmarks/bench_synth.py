"""Synthetic-data generation time per clip for each profile (single process, a handful of clips).

Run: ``python benchmarks/bench_synth.py``. Writes ``benchmarks/results/synth.{json,md}``.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
from _common import write_result

from avseld.config import load_config
from avseld.synth.generate import plan_dataset, render_clip

N_CLIPS = 6


def main() -> None:
    rows = []
    for profile in ("smoke", "default"):
        cfg = load_config(profile).synth
        scenes = plan_dataset(cfg, seed=0)
        pick = scenes[:: max(1, len(scenes) // N_CLIPS)][:N_CLIPS]
        with tempfile.TemporaryDirectory() as tmp:
            render_clip(pick[0], tmp, cfg.ism_max_order, cfg.video_codec)  # warm-up (imports, caches)
            times = []
            for s in pick:
                t0 = time.perf_counter()
                r = render_clip(s, tmp, cfg.ism_max_order, cfg.video_codec)
                times.append((time.perf_counter() - t0, r["audio_s"], r["video_s"], r["write_s"]))
        t = np.array(times)
        n_total = cfg.n_train_clips + cfg.n_test_clips
        rows.append({
            "profile": profile,
            "video": f"{cfg.video_width}x{cfg.video_height}@{cfg.video_fps:g}",
            "clips_timed": len(pick),
            "s_per_clip": float(t[:, 0].mean()),
            "audio_s": float(t[:, 1].mean()),
            "video_s": float(t[:, 2].mean()),
            "write_s": float(t[:, 3].mean()),
            "clips_in_profile": n_total,
            "est_total_s_2_workers": float(t[:, 0].mean() * n_total / 2),
        })
    write_result("synth", rows, notes="Single-process render time per clip (audio = sounds + ISM + tail, "
                 "video = drawing, write = wav + mp4 encode + csv); the total assumes 2 workers scale linearly.")


if __name__ == "__main__":
    main()
