"""Training and inference throughput (clips/s) and peak memory of every model variant on CPU.

Each variant runs in its own subprocess (so ``ru_maxrss`` is its own peak), built as the study builds
it: the default profile plus the config of the system of its name (AV-SELD+'s full-view tokens and
one-layer fusion), with the feature shapes that config caches; AV-SELD's cost is reported relative to
the baseline measured in the same run. A model may carry more ``model.*`` settings,
``name:key=value,...`` (e.g. ``avseld_plus:fusion_window=50``, the window of the ablation without
frame-local fusion; ``avseld_plus:fused_heads=all``).
Usage: ``python benchmarks/bench_models.py [--threads N] [--batch B] [--models M ...]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_result  # noqa: E402


# every registered variant, and the ablations "AV-SELD+ w/o frame-local fusion" (a window over the whole clip)
# and "AV-SELD+ w/ every branch fused"
EXTRA_MODELS = ("avseld_plus:fusion_window=50", "avseld_plus:fused_heads=all")


def _parse(spec: str) -> tuple[str, dict]:
    """``name[:key=value,...]`` -> (variant name, ``model.*`` settings, read as the CLI's --set values)."""
    from avseld.config import parse_override

    name, _, args = spec.partition(":")
    return name, dict(parse_override(item) for item in filter(None, args.split(",")))


def _one(spec: str, batch: int, threads: int, steps: int) -> dict:
    import torch

    from avseld.config import load_config
    from avseld.features import visual_feature_shape
    from avseld.losses import ADPITLoss
    from avseld.models import build_model_from_config, count_parameters, uses_video, variant_config_overrides

    torch.set_num_threads(threads)
    name, kwargs = _parse(spec)
    cfg = load_config("default").with_overrides(variant_config_overrides(name))
    cfg = cfg.with_overrides({f"model.{k}": v for k, v in kwargs.items()})
    vshape = tuple(visual_feature_shape(cfg.features))
    torch.manual_seed(0)
    model = build_model_from_config(cfg, name, in_channels=2, visual_shape=vshape if uses_video(name) else None)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = ADPITLoss(model.layout)
    audio = torch.randn(batch, 2, 251, 64)
    video = torch.randn(batch, 50, *vshape) if model.uses_video else None
    target = torch.zeros(batch, 50, 6, 5, 13)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def timed_steps(bf16: bool) -> float:
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # train.cpu_bf16
                out = model(audio, video)
            loss_fn(out.float(), target).backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t0)
        return min(times)

    train_s, train_bf16_s = timed_steps(False), timed_steps(True)
    model.eval()
    itimes = []
    with torch.no_grad():
        for i in range(steps + 1):
            t0 = time.perf_counter()
            model(audio, video)
            if i:
                itimes.append(time.perf_counter() - t0)
    infer_s = min(itimes)
    return {"model": spec, "params": count_parameters(model), "visual_shape": str(vshape) if model.uses_video else "-",
            "train_clips_per_s": batch / train_s, "train_bf16_clips_per_s": batch / train_bf16_s,
            "bf16_speedup": train_s / train_bf16_s, "infer_clips_per_s": batch / infer_s,
            "train_step_ms": 1000 * train_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mb": rss0 / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1, help="torch threads (the study runs 1 per training process)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="timed steps (the fastest counts)")
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        sys.stdout.write(json.dumps(_one(a.one, a.batch, a.threads, a.steps)) + "\n")
        return
    from avseld.models import MODELS

    rows = []
    for name in a.models or [*MODELS, *EXTRA_MODELS]:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--batch", str(a.batch), "--threads",
                              str(a.threads), "--steps", str(a.steps)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = next((r for r in rows if r["model"] == "baseline_av"), None)
    if base:
        for r in rows:
            r["train_cost_vs_baseline_av"] = base["train_clips_per_s"] / r["train_clips_per_s"]
            r["infer_cost_vs_baseline_av"] = base["infer_clips_per_s"] / r["infer_clips_per_s"]
    notes = (f"CPU, {a.threads} torch threads, batch {a.batch}, default-profile feature shapes; fastest of "
             f"{a.steps} timed steps after one warm-up (forward + ADPIT + backward + Adam for training; "
             "bf16 = the same step under CPU bfloat16 autocast, train.cpu_bf16). "
             "Cost > 1 means slower than baseline_av in the same run. Shared machine: absolute numbers are noisy.")
    print(write_result("models", rows, notes))


if __name__ == "__main__":
    main()
