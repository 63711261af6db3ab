"""``avseld validate-data``: check every clip of a dataset root, print a summary and every problem."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="dataset root in the DCASE 2025 layout (real or synthetic)")
    p.add_argument("--splits", nargs="*", default=None, help="split folders or prefixes (default: all)")
    p.add_argument("--no-video", action="store_true", help="skip decoding the videos (faster)")
    p.add_argument("--sample-rate", type=int, default=24000, help="required audio sample rate (Hz)")
    p.add_argument("--duration", type=float, default=5.0, help="required clip length (s)")


def run(args: argparse.Namespace) -> int:
    from avseld.validate import validate_dataset

    report = validate_dataset(
        args.root, splits=args.splits, sample_rate=args.sample_rate, duration_s=args.duration, check_video=not args.no_video
    )
    sys.stdout.write(report.format() + "\n")
    return 0 if report.ok else 1
