"""``avseld train``: train a model variant on the cached features (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import sys

from avseld.config import PROFILES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"profile name ({', '.join(PROFILES)}) or a YAML file")
    p.add_argument("--model", default=None,
                   help="study system (avseld.systems.SYSTEMS: its model and overrides) or registered model "
                        "(default: the profile's model.name); see 'avseld models'")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the profile's train.seed)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted config override, applied after the variant's own overrides (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run from checkpoints/last.pt")
    p.add_argument("--run-id", default=None, help="run folder name (default: <model>-<config hash>-s<N>, the id the study gives the same run)")
    p.add_argument("--data", default=None, help="dataset root (default: data.root)")
    p.add_argument("--cache", default=None, help="feature-cache root (default: data.cache_dir)")
    p.add_argument("--runs", default=None, help="runs root (default: data.runs_dir)")


def run(args: argparse.Namespace) -> int:
    from avseld.config import load_config
    from avseld.models import MODELS
    from avseld.systems import SYSTEMS

    base = load_config(args.profile)
    key = args.model or base.model.name
    if key in SYSTEMS:
        cfg, name = SYSTEMS[key].config(base), SYSTEMS[key].model
    elif key in MODELS:
        cfg, name = base.with_overrides({"model.name": key}), key
    else:
        from avseld.errors import ConfigError

        raise ConfigError(f"unknown model or system '{key}' (systems: {', '.join(SYSTEMS)}; models: {', '.join(MODELS)})")
    cfg = cfg.with_overrides(args.overrides)
    seed = cfg.train.seed if args.seed is None else args.seed

    from avseld import engine

    run_dir = engine.train(cfg, name, seed, args.data or cfg.data.root, args.cache or cfg.data.cache_dir,
                           args.runs or cfg.data.runs_dir, run_id=args.run_id, resume=args.resume)
    env_rank = __import__("os").environ.get("RANK", "0")
    if env_rank == "0":
        sys.stdout.write(f"{run_dir}\n")
    return 0
