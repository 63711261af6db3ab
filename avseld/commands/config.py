"""``avseld config``: print the resolved configuration of a profile as YAML."""

from __future__ import annotations

import argparse
import sys

from avseld.config import PROFILES, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"profile name ({', '.join(PROFILES)}) or a YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. train.lr=3e-4 (repeatable)")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.profile, args.overrides)
    sys.stdout.write(cfg.to_yaml())
    return 0
