"""``avseld models``: list the registered model variants with their parameter counts."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=None, help="show one variant only")


def run(args: argparse.Namespace) -> int:
    from avseld.models import MODELS, build_model, count_parameters, variant_config_overrides

    names = [args.name] if args.name else list(MODELS)
    rows = []
    for name in names:
        if name not in MODELS:
            from avseld.errors import ConfigError

            raise ConfigError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
        model = build_model(name)
        over = variant_config_overrides(name)
        rows.append((name, f"{count_parameters(model):,}", "yes" if model.uses_video else "no",
                     MODELS[name].description + (f"  [config: {', '.join(f'{k}={v}' for k, v in over.items())}]" if over else "")))
    w = [max(len(r[i]) for r in rows + [("name", "parameters", "video", "")]) for i in range(3)]
    out = [f"{'name':<{w[0]}}  {'parameters':>{w[1]}}  {'video':<{w[2]}}  description"]
    out += [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:<{w[2]}}  {d}" for a, b, c, d in rows]
    sys.stdout.write("\n".join(out) + "\n")
    return 0
