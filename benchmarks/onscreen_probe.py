"""How much on-screen information do the cached visual features hold? A probe, not a system.

    python benchmarks/onscreen_probe.py [CACHE_DIR ...]   # default: the default profile's caches under data/cache

For every active event of every frame (each ADPIT slot with activity 1: class, true azimuth, on-screen
flag), a small MLP (one hidden layer of 128, dropout 0.2, Adam 1e-3, 15 epochs, batches of 256) is fitted
on the training split and scored on dev-test, from

- ``audio``: the class (one-hot) and the event's *true* folded azimuth (cos, |sin|, |az|): the most an
  audio system could know, since stereo cannot tell front from back;
- ``audio + video``: the same plus the frame's cached visual features (the centre-crop map in baseline
  mode, the 3x5 tokens in full-view mode).

Accuracy is the share of events whose on-screen flag the probe gets right, the metric's OSA for perfectly
localised events; "always off" is the share of off-screen events. The last columns score only the
events at folded |azimuth| < 50 degrees, the ones stereo cannot place in front or behind (an event
beyond 50 degrees is off-screen whatever the picture); there the majority share is the better of always
on and always off. For full-view caches with one row of tokens, a last column hands the probe only the
token column where the event would appear if it were in front (the pinhole of SPEC section 1, and its
two neighbours) with its class: how much a readout that looks in the right place could get.
Writes ``results/onscreen_probe.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def events(arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per active ADPIT slot: visual features of its frame (E, D), class (E,), true azimuth rad (E,),
    on-screen flag (E,)."""
    tg = arrays.targets[arrays.rows]  # (N, 50, 6, 5, K)
    video = np.asarray(arrays.video[arrays.rows]).reshape(len(arrays), tg.shape[1], -1)
    n, t, s, k = np.argwhere(tg[:, :, :, 0, :] > 0.5).T
    return video[n, t], k, np.arctan2(tg[n, t, s, 2, k], tg[n, t, s, 1, k]), tg[n, t, s, 4, k]


def inputs(video: np.ndarray, cls: np.ndarray, az: np.ndarray, with_video: bool) -> torch.Tensor:
    parts = [np.eye(13)[cls], np.stack([np.cos(az), np.abs(np.sin(az)), np.abs(az)], 1)]
    if with_video:
        parts.append(video)
    return torch.tensor(np.concatenate(parts, 1), dtype=torch.float32)


def at_azimuth(video: np.ndarray, az: np.ndarray, n_cols: int) -> np.ndarray:
    """The features of the token column at each event's azimuth and its two neighbours, ``(E, 3 * dim)``,
    from one row of ``n_cols`` tokens ``(E, n_cols * dim)``: column of u = W/2 - f tan(az), f = (W/2) / tan(50°)."""
    tokens = video.reshape(len(video), n_cols, -1)
    u = 0.5 - 0.5 * np.tan(np.clip(az, -1.5, 1.5)) / np.tan(np.deg2rad(50.0))
    col = np.clip((u * n_cols).astype(int), 0, n_cols - 1)
    idx = np.clip(col[:, None] + np.array([-1, 0, 1]), 0, n_cols - 1)
    return tokens[np.arange(len(video))[:, None], idx].reshape(len(video), -1)


def probe(train, test, with_video: bool, seed: int = 0) -> np.ndarray:
    """Per dev-test event, whether the probe fitted on ``train`` gets its flag right (both from :func:`events`)."""
    torch.manual_seed(seed)
    x, y = inputs(*train[:3], with_video), torch.tensor(train[3], dtype=torch.float32)
    xt, yt = inputs(*test[:3], with_video), test[3] > 0.5
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xt = (x - mu) / sd, (xt - mu) / sd
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(15):
        net.train()
        for j in torch.randperm(len(x)).split(256):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[j])[:, 0], y[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return (net(xt)[:, 0] > 0).numpy() == yt


def main(argv: list[str]) -> int:
    import yaml

    from avseld.batches import load_clip_arrays

    torch.set_num_threads(1)
    caches = [Path(a) for a in argv] or sorted(p.parent for p in (REPO / "data" / "cache").glob("*/feature_config.yaml"))
    lines = ["| cache | visual mode | tokens | train events | dev-test events | always off | audio (true azimuth) "
             "| audio + video | \\|az\\| < 50°: majority | \\|az\\| < 50°: audio + video "
             "| \\|az\\| < 50°: class + the column at the azimuth |", "|" + "---|" * 11]
    for cache in caches:
        fc = yaml.safe_load((cache / "feature_config.yaml").read_text())
        fc = fc.get("features") or fc
        mode = fc.get("visual_mode", "baseline")
        tokens = (f"{'x'.join(map(str, fc.get('fullview_grid')))} x {fc.get('fullview_dim')}, stride "
                  f"{fc.get('fullview_stride', 32)}" if mode == "fullview" else "centre-crop map")
        train, test = events(load_clip_arrays(cache, "dev-train")), events(load_clip_arrays(cache, "dev-test"))
        off = float((test[3] < 0.5).mean())
        a, av = probe(train, test, False), probe(train, test, True)
        front = np.abs(np.rad2deg(test[2])) < 50
        on_share = float((test[3][front] > 0.5).mean())
        column = "–"
        if mode == "fullview" and list(fc.get("fullview_grid"))[0] == 1:  # one row of tokens
            n_cols = int(fc["fullview_grid"][1])
            tr_front = np.abs(np.rad2deg(train[2])) < 50

            def sub(ev, m):  # the column's features as the "video", no azimuth input (all are within 50 degrees)
                return at_azimuth(ev[0][m], ev[2][m], n_cols), ev[1][m], np.zeros(int(m.sum())), ev[3][m]

            column = f"{100 * probe(sub(train, tr_front), sub(test, front), True).mean():.1f} %"
        lines.append(f"| {cache.name} | {mode} | {tokens} | {len(train[1])} | {len(test[1])} | {100 * off:.1f} % | "
                     f"{100 * a.mean():.1f} % | {100 * av.mean():.1f} % | {100 * max(on_share, 1 - on_share):.1f} % | "
                     f"{100 * av[front].mean():.1f} % | {column} |")
        print(lines[-1], flush=True)
    (HERE / "results" / "onscreen_probe.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
