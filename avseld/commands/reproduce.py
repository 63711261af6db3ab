"""``avseld reproduce``: locate or generate the data, then run notebooks 00-06 with papermill."""

from __future__ import annotations

import argparse
import logging
import time

from avseld.config import PROFILES

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"profile name ({', '.join(PROFILES)}) or a YAML file")
    p.add_argument("--workdir", default=".", help="where data/, figures/ and notebooks/executed/ go (default: .)")
    p.add_argument("--data-root", default="", help="dataset root (default: <workdir>/<data.root of the profile>)")
    p.add_argument("--seeds", default="", help="comma-separated training seeds (default: the profile's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--only", default="", help="comma-separated notebook prefixes to run (e.g. 05,06)")
    p.add_argument("--started-at", type=float, default=None,
                   help="UNIX time when the surrounding command began (make reproduce passes it, install included)")


def run(args: argparse.Namespace) -> int:
    from avseld import pipeline, study
    from avseld.errors import ConfigError

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers, got '{args.seeds}'") from None
    st = study.open_study(args.profile, args.workdir, args.data_root, seeds, args.device)
    t0 = time.perf_counter()
    log.info("reproduce: profile %s, workdir %s, seeds %s", st.cfg.profile, st.workdir, list(st.seeds))
    study.ensure_dataset(st)  # generate or locate the data before any notebook runs
    data_s = time.perf_counter() - t0
    notebooks = pipeline.NOTEBOOKS
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        notebooks = tuple(n for n in notebooks if any(n.startswith(w) for w in wanted))
        if not notebooks:
            raise ConfigError(f"--only: no notebook matches '{args.only}'")
    from pathlib import Path

    profile = str(Path(args.profile).resolve()) if Path(args.profile).suffix in (".yaml", ".yml") else args.profile
    data_root = str(Path(args.data_root).resolve()) if args.data_root else ""
    params = {"profile": profile, "data_root": data_root, "seeds": list(seeds), "device": args.device}
    times = pipeline.run_study(st.workdir, params, notebooks)
    pipeline.write_timings(st.figures_dir, {"data (locate or generate)": data_s, **times},
                           total_s=time.perf_counter() - t0,
                           since_start_s=None if args.started_at is None else time.time() - args.started_at)
    log.info("reproduce: %d notebooks in %.1f s (%s); figures in %s", len(times), time.perf_counter() - t0,
             ", ".join(f"{k[:2]} {v:.0f}s" for k, v in times.items()), st.figures_dir)
    return 0
