"""``avseld predict``: write DCASE prediction CSVs (and dev-test metrics) from a trained run."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder (made by 'avseld train')")
    p.add_argument("--split", default="dev-test", help="split-folder prefix: dev-test (default) or eval")
    p.add_argument("--data", default=None, help="dataset root (default: the one the run was trained on)")
    p.add_argument("--cache", default=None, help="feature-cache root (default: the run's)")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint")


def run(args: argparse.Namespace) -> int:
    from avseld import inference

    pred_dir = inference.predict(args.run, split=args.split, data_root=args.data, cache_root=args.cache,
                                 checkpoint=args.checkpoint)
    sys.stdout.write(f"{pred_dir}\n")
    return 0
