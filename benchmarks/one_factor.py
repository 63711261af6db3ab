"""One-factor training runs: one study system, one seed, dotted overrides, on the profile's data and cache.

    python benchmarks/one_factor.py SYSTEM SEED TAG [key=value ...]   # train, score, append a record
    python benchmarks/one_factor.py --table                           # one_factor.md from the records

How the `default` recipe was chosen (README, "How the recipe was chosen"): each record is one run of
``avseld.study`` system SYSTEM (``avseld.study.SYSTEMS``) with the default profile plus the overrides, in
``data/exp_runs/TAG-SYSTEM-sSEED`` (never mixed with the study's runs), scored on dev-test. Each line of
``results/one_factor.jsonl`` holds the overrides, dev-test F20 / F20_on / DOAE, the azimuth agreement of
``avseld.report.azimuth_agreement``, the validation F20 per epoch and its gain over the last quarter.
Timings are for whatever else the machine was running (several runs were side by side).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RECORDS = HERE / "results" / "one_factor.jsonl"


def run(system: str, seed: int, tag: str, overrides: list[str], profile: str = "default") -> dict:
    import torch

    from avseld import engine, report
    from avseld import study as S
    from avseld.logging_setup import setup_logging

    setup_logging()
    torch.set_num_threads(1)
    st = S.open_study(profile, REPO, overrides=[*overrides, "train.num_threads=1"])
    sysm = S.get_system(system)
    rid = f"{tag}-{system}-s{seed}"
    t0 = time.time()
    cfg = sysm.config(st.cfg).with_overrides(overrides)  # the overrides win over the system's own, as `avseld train --set`
    rd = engine.train(cfg, sysm.model, seed, st.data_root, st.cache_root, REPO / "data" / "exp_runs",
                      run_id=rid, resume=True)
    m = json.loads((rd / "metrics.json").read_text())
    az = report.azimuth_agreement(rd)
    log = [json.loads(x) for x in (rd / "log.jsonl").read_text().splitlines() if x.strip()]
    f = [r["val"]["F20"] for r in log]
    q = max(1, len(f) // 4)
    rec = {"rid": rid, "system": system, "seed": seed, "overrides": overrides, "F20": m["F20"], "F20_on": m["F20_on"],
           "DOAE": m["DOAE"], "RDE": m["RDE"], "OSA": m["OSA"], "corr": az["corr"], "slope": az["slope"],
           "best_epoch": m["best_epoch"], "val_F20": [round(x, 3) for x in f], "lastq_gain": f[-1] - f[-1 - q],
           "wall": time.time() - t0, "med_epoch": sorted(r["epoch_time_s"] for r in log)[len(log) // 2]}
    with open(RECORDS, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    return rec


def table() -> str:
    lines = ["| run | overrides on the default profile | F20 (%) | DOAE (°) | azimuth corr | slope | val F20 gain, last quarter (pts) | note |",
             "|---|---|---|---|---|---|---|---|"]
    for line in RECORDS.read_text().splitlines():
        r = json.loads(line)
        lines.append(f"| {r['rid']} | {' '.join(r['overrides']) or '(none)'} | {100 * r['F20']:.1f} | {r['DOAE']:.1f} | "
                     f"{r['corr']:.2f} | {r['slope']:.2f} | {100 * r['lastq_gain']:+.1f} | {r.get('note', '')} |")
    text = "\n".join(lines) + "\n"
    (HERE / "results" / "one_factor.md").write_text(text)
    return text


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(table())
    else:
        system, seed, tag, *ov = sys.argv[1:]
        print(json.dumps(run(system, int(seed), tag, ov)))
