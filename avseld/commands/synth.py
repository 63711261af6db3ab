"""``avseld synth``: generate the embedded synthetic dataset in the DCASE 2025 layout."""

from __future__ import annotations

import argparse
import sys

from avseld.config import PROFILES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"profile name ({', '.join(PROFILES)}) or a YAML file")
    p.add_argument("--seed", type=int, default=None, help="dataset seed (default: synth.seed of the profile)")
    p.add_argument("--out", required=True, help="dataset root to write (stereo_dev/, video_dev/, metadata_dev/)")
    p.add_argument("--workers", type=int, default=None, help="process-pool size (default: synth.n_workers)")
    p.add_argument("--overwrite", action="store_true", help="regenerate every clip, even in a root made with another config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. synth.n_train_clips=50 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from avseld.config import load_config
    from avseld.errors import ConfigError
    from avseld.synth import generate_dataset
    from avseld.stats import dataset_summary, format_summary

    cfg = load_config(args.profile, args.overrides)
    try:
        out = generate_dataset(cfg.synth, args.out, seed=args.seed, n_workers=args.workers, overwrite=args.overwrite)
    except ValueError as e:
        if isinstance(e, ConfigError) or e.__class__ is not ValueError:
            raise
        raise ConfigError(f"synth: {e}") from None
    sys.stdout.write(f"wrote {out}\n" + format_summary(dataset_summary(out)) + "\n")
    return 0
