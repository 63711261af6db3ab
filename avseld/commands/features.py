"""``avseld features``: extract and cache audio and visual features for every split of a dataset."""

from __future__ import annotations

import argparse
import sys

from avseld.config import PROFILES, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"profile name ({', '.join(PROFILES)}) or a YAML file")
    p.add_argument("--data", default=None, help="dataset root (default: the profile's data.root)")
    p.add_argument("--cache", default=None, help="cache root (default: the profile's data.cache_dir)")
    p.add_argument("--splits", nargs="*", default=None, metavar="SPLIT",
                   help="split folders or prefixes (default: all, e.g. dev-train dev-test eval)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="extraction processes (default 1); on a CPU, one per core with --threads 1")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads per worker process (default: cores / workers)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. features.backbone=resnet50 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from avseld.cache import build_feature_cache, list_cached_splits

    cfg = load_config(args.profile, args.overrides)
    data = args.data or cfg.data.root
    cache = args.cache or cfg.data.cache_dir
    cache_dir = build_feature_cache(cfg, data, cache, splits=args.splits, n_workers=args.workers,
                                    threads_per_worker=args.threads)
    sys.stdout.write(f"{cache_dir}\n")
    for split in list_cached_splits(cache_dir):
        sys.stdout.write(f"  {split}\n")
    return 0
