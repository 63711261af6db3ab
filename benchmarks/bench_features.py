"""Feature benchmarks, each against the official pipeline's way of doing the same work, same run.

Rows:
    1. whole-clip caching (decode wav + mp4, log-mel, ResNet-50 baseline-mode features, write):
       ``avseld.cache.build_feature_cache`` against the official per-clip recipe (librosa load,
       OpenCV decode, per-frame PIL transforms, one clip at a time, one torch.save per file), with
       the same (random, seeded) ResNet-50 weights, and how far apart their features are; the official
       side runs the network as the official code does (torchvision ResNet-50, batch norms unfolded,
       NCHW); a third row adds ``features.cpu_bf16=true`` (bfloat16 backbone, not identical); all
       three with one torch thread. Then the whole machine, on more clips: the official recipe with
       torch's default thread count (every core) against ours in one process with as many threads
       and ``avseld features --workers <cores>`` (one single-threaded extraction process per core,
       their start-up included);
    2. log-mel alone: librosa recipe vs ours per clip and batched;
    3. visual frames per second for each backbone and mode at the paper, default and smoke sizes;
    4. the per-clip cost of the whole feature step at the smoke and default profile settings, on
       clips from the synthetic generator (this sizes the default profile);
    5. reading a cached split for one epoch against one torch.load per clip.

Run: ``python benchmarks/bench_features.py [--clips 4]``. OpenCV is not a project dependency: the
official row needs ``cv2`` importable (e.g. ``pip install --target /tmp/cv2 opencv-python-headless``
and ``--cv2-path /tmp/cv2``); without it that row is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

SR = 24000


class Timer:
    """Wall and process-CPU seconds of a block (CPU time is robust to other load on the machine)."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def make_official_style_dataset(root: Path, n: int) -> Path:
    """``n`` 5-s clips at the real dataset's geometry (640x360) but 30 fps, so that the official
    'every third frame' and our timestamp sampling pick the same frames."""
    import av
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(5 * SR) / SR
    for d in ("stereo_dev", "video_dev", "metadata_dev"):
        (root / d / "dev-train-b").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:360, 0:640]
    for i in range(n):
        name = f"fold3_room1_mix{i:03d}"
        audio = np.stack([np.sin(2 * np.pi * 440 * t), 0.3 * rng.standard_normal(t.size)], 1) * 0.2
        sf.write(root / "stereo_dev" / "dev-train-b" / f"{name}.wav", audio.astype(np.float32), SR, subtype="PCM_16")
        with av.open(str(root / "video_dev" / "dev-train-b" / f"{name}.mp4"), "w") as out:
            st = out.add_stream("mpeg4", rate=Fraction(30))
            st.width, st.height, st.pix_fmt, st.bit_rate = 640, 360, "yuv420p", 4_000_000
            for k in range(150):
                img = np.stack([(xx + 4 * k + 40 * i) % 256, (yy * 2) % 256, ((xx // 40 + yy // 40) % 2) * 200], -1)
                for pkt in st.encode(av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
        (root / "metadata_dev" / "dev-train-b" / f"{name}.csv").write_text(
            "frame,class,source,azimuth,distance,onscreen\n0,1,0,30,150,1\n"
        )
    return root


def librosa_logmel(audio: np.ndarray) -> np.ndarray:
    """The official recipe written with librosa (the reference of the 0.01-dB tests)."""
    import librosa

    power = np.abs(librosa.stft(audio, n_fft=1024, hop_length=480, win_length=960)) ** 2
    mel = np.einsum("mk,ckt->ctm", librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64), power)
    return librosa.power_to_db(mel)


def opencv_every_third_frame(path: Path, resize: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The official recipe's video decode: OpenCV, every third frame (30 fps -> 10 fps), optionally
    resized (width, height) before the BGR -> RGB conversion; RGB uint8 frames."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames, k = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if k % 3 == 0:
            if resize is not None:
                frame = cv2.resize(frame, resize)
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        k += 1
    cap.release()
    return frames


def official_per_clip(root: Path, out: Path, backbone) -> list[str]:
    """The official extraction loop, re-expressed: per clip, per frame, one file per tensor."""
    import librosa
    import torch
    from PIL import Image
    from torchvision.models import ResNet50_Weights

    preprocess = ResNet50_Weights.IMAGENET1K_V2.transforms()
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for wav in sorted((root / "stereo_dev" / "dev-train-b").glob("*.wav")):
        audio, _ = librosa.load(wav, sr=SR, mono=False)
        torch.save(torch.tensor(librosa_logmel(audio), dtype=torch.float32), out / f"{wav.stem}_audio.pt")
        mp4 = root / "video_dev" / "dev-train-b" / f"{wav.stem}.mp4"
        frames = [Image.fromarray(f) for f in opencv_every_third_frame(mp4, resize=(360, 180))]
        with torch.no_grad():
            x = torch.stack([preprocess(f) for f in frames])
            torch.save(torch.mean(backbone(x), dim=1), out / f"{wav.stem}_video.pt")
        names.append(wav.stem)
    return names


OFFICIAL, OURS, OURS_BF16 = ("official per-clip recipe", "avseld build_feature_cache",
                             "avseld build_feature_cache, features.cpu_bf16=true")
OFFICIAL_ALL, OURS_THREADS, OURS_ALL = ("official per-clip recipe, torch threads {n}",
                                       "avseld build_feature_cache, 1 process, torch threads {n}",
                                       "avseld build_feature_cache, {n} workers x 1 thread")


class _Threads:
    """Run a block with ``n`` torch threads, then restore the previous count."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def _timed_rounds(pipelines: dict, rounds: int) -> tuple[dict, dict, dict]:
    """Alternate the pipelines for ``rounds`` rounds (the machine's speed drifts within a minute);
    returns each one's fastest Timer, all Timers and each one's last output."""
    times: dict[str, list[Timer]] = {v: [] for v in pipelines}
    outs = {}
    for r in range(rounds):
        for variant, run in pipelines.items():
            with Timer() as t:
                outs[variant] = run(r)
            times[variant].append(t)
    return {v: min(ts, key=lambda t: t.wall) for v, ts in times.items()}, times, outs


def bench_caching(n_clips: int, rows: list[dict], notes: list[str], rounds: int = 2, machine_clips: int = 12) -> None:
    import torch
    import torchvision

    from avseld.cache import build_feature_cache, load_split
    from avseld.config import load_config
    from avseld.features.visual import build_backbone

    try:
        import cv2  # noqa: F401
    except ImportError:
        notes.append("caching vs official: skipped, OpenCV (cv2) not importable (see --cv2-path)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_official_style_dataset(tmp / "data", n_clips)
        torch.manual_seed(0)
        wpath = tmp / "resnet50_random.pth"
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), wpath)
        cfg = load_config("paper", ["features.device=cpu", f"features.resnet50_weights={wpath}"])
        # the official network as the official code runs it: torchvision's ResNet-50 up to layer4,
        # eval mode, batch norms unfolded, NCHW (our extractor folds them and runs channels-last).
        # Built inside each timed run, as the official script builds it at its start: every pipeline
        # is timed from files to cache, its one-time model loading included.
        def official_run(data: Path, out: Path) -> list[str]:
            return official_per_clip(data, out, build_backbone("resnet50", weights=wpath, optimise=False))
        # alternate the three pipelines and keep each one's fastest round: the machine is shared and
        # its speed drifts by tens of per cent within a minute
        cfg_bf16 = cfg.with_overrides(["features.cpu_bf16=true"])
        pipelines = {  # variant -> one timed run into round r's own folder
            OFFICIAL: lambda r: official_run(root, tmp / f"official{r}"),
            OURS: lambda r: build_feature_cache(cfg, root, tmp / f"cache{r}"),
            OURS_BF16: lambda r: build_feature_cache(cfg_bf16, root, tmp / f"cache_bf16_{r}"),
        }
        best, times, outs = _timed_rounds(pipelines, rounds)
        rounds_note = ", ".join("/".join(f"{times[v][r].wall / n_clips:.2f}" for v in pipelines) for r in range(rounds))
        names, cache_dir, cache_bf16 = outs[OFFICIAL], outs[OURS], outs[OURS_BF16]
        sa = load_split(cache_dir, "dev-train-b")
        official_dir = tmp / f"official{rounds - 1}"
        a_off = np.stack([torch.load(official_dir / f"{n}_audio.pt").numpy() for n in names])
        v_off = np.stack([torch.load(official_dir / f"{n}_video.pt").numpy().reshape(50, -1) for n in names])
        da = float(np.abs(sa.audio - a_off).max())
        dv = float(np.abs(sa.video - v_off).max() / np.abs(v_off).max())
        dv_bf16 = float(np.abs(load_split(cache_bf16, "dev-train-b").video - v_off).max() / np.abs(v_off).max())
        # our transform chain on OpenCV's decoded frames, to separate decoder from transform differences
        from avseld.features import build_visual_extractor

        frames = opencv_every_third_frame(root / "video_dev" / "dev-train-b" / f"{names[0]}.mp4")
        ex = build_visual_extractor(cfg.features, weights=wpath)
        dv_same = float(np.abs(ex(np.stack(frames)) - v_off[0]).max() / np.abs(v_off[0]).max())

        # the whole machine: every core, as each pipeline uses it by default or by its option
        cores = os.cpu_count() or 1
        root_m = make_official_style_dataset(tmp / "data_machine", machine_clips)
        official_all, ours_threads, ours_all = (v.format(n=cores) for v in (OFFICIAL_ALL, OURS_THREADS, OURS_ALL))

        def official_machine(r):
            with _Threads(cores):
                return official_run(root_m, tmp / f"official_m{r}")

        def ours_one_process(r):
            with _Threads(cores):
                return build_feature_cache(cfg, root_m, tmp / f"cache_t{r}")

        machine = {official_all: official_machine, ours_threads: ours_one_process,
                   ours_all: lambda r: build_feature_cache(cfg, root_m, tmp / f"cache_m{r}", n_workers=cores,
                                                           threads_per_worker=1)}
        best_m, times_m, outs_m = _timed_rounds(machine, rounds)
        names_m = outs_m[official_all]
        v_off_m = np.stack([torch.load(tmp / f"official_m{rounds - 1}" / f"{n}_video.pt").numpy().reshape(50, -1)
                            for n in names_m])
        dv_m = float(np.abs(load_split(outs_m[ours_all], "dev-train-b").video - v_off_m).max() / np.abs(v_off_m).max())
        rounds_m = ", ".join("/".join(f"{times_m[v][r].wall / machine_clips:.2f}" for v in machine) for r in range(rounds))
    bench = "caching (ResNet-50 baseline mode, 640x360 30 fps)"
    for variant, t in best.items():
        rows.append({"bench": bench, "variant": variant, "clips": n_clips,
                     "wall_s_per_clip": t.wall / n_clips, "cpu_s_per_clip": t.cpu / n_clips,
                     "speedup": best[OFFICIAL].wall / t.wall})
    for variant, t in best_m.items():  # cpu_s: this process only (the workers' CPU time is not counted)
        rows.append({"bench": bench + ", whole machine", "variant": variant, "clips": machine_clips,
                     "wall_s_per_clip": t.wall / machine_clips, "speedup": best_m[official_all].wall / t.wall})
    notes.append(
        f"caching: audio features max |diff| {da:.2e} dB vs the official recipe; visual features max relative diff "
        f"{dv:.2e} (PyAV vs OpenCV YUV->RGB conversion differ by a few grey levels); on the same OpenCV-decoded "
        f"frames our transform chain gives max relative diff {dv_same:.2e}; with features.cpu_bf16=true the visual "
        f"features are within {dv_bf16:.2e} relative of the official ones; wall s per clip official/ours/ours-bf16 "
        f"by round: {rounds_note} (the table keeps each one's fastest round); whole machine ({machine_clips} clips, "
        f"{cores} cores): our visual features within {dv_m:.2e} relative of the official ones, wall s per clip "
        f"official/ours 1 process/ours {cores} workers by round: {rounds_m}, the workers' time includes starting them; "
        f"every pipeline is timed from files to cache, loading its backbone included"
    )


def bench_logmel(rows: list[dict]) -> None:
    import torch

    from avseld.features import extract_logmel

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((16, 2, 5 * SR))).astype(np.float32)
    librosa_logmel(x[0]), extract_logmel(x[0]), extract_logmel(x)  # warm up
    reps = 3
    with Timer() as tl:
        for _ in range(reps):
            for a in x:
                librosa_logmel(a)
    with Timer() as to:
        for _ in range(reps):
            for a in x:
                extract_logmel(a)
    with Timer() as tb:
        for _ in range(reps):
            extract_logmel(torch.from_numpy(x))
    n = reps * len(x)
    base = tl.wall / n
    for variant, t in (("librosa recipe, per clip", tl), ("avseld, per clip", to), ("avseld, batch of 16", tb)):
        rows.append({"bench": "log-mel (5-s stereo clip)", "variant": variant, "clips": n,
                     "wall_s_per_clip": t.wall / n, "cpu_s_per_clip": t.cpu / n, "speedup": base / (t.wall / n)})


def bench_visual(rows: list[dict]) -> None:
    import torch

    from avseld.config import load_config
    from avseld.features import build_visual_extractor, visual_feature_shape

    frames = np.random.default_rng(0).integers(0, 255, size=(50, 360, 640, 3), dtype=np.uint8)
    geoms = {
        "paper 360x180/232/224": [],
        "default 320x160/128/112": ["features.frame_width=320", "features.frame_height=160",
                                    "features.resize_short=128", "features.crop_size=112"],
        "smoke 192x96/112/112": ["features.frame_width=192", "features.frame_height=96",
                                 "features.resize_short=112", "features.crop_size=112"],
    }
    for backbone in ("resnet50", "efficientnet_lite0"):
        for gname, over in geoms.items():
            for mode in ("baseline", "fullview"):
                if gname.startswith("smoke") and mode == "fullview":
                    continue
                cfg = load_config("paper", over + [f"features.backbone={backbone}", f"features.visual_mode={mode}",
                                                   "features.device=cpu"]).features
                torch.manual_seed(0)
                ex = build_visual_extractor(cfg, weights=None if backbone == "resnet50" else "auto")
                ex(frames[:4])
                with Timer() as t:
                    ex(frames)
                rows.append({"bench": "visual", "variant": f"{backbone} {mode} {gname}",
                             "shape": str(visual_feature_shape(cfg)), "frames_per_s": 50 / t.wall,
                             "wall_s_per_clip": t.wall, "cpu_s_per_clip": t.cpu})


def bench_profiles(rows: list[dict], n_clips: int) -> None:
    """Whole feature step per clip at the smoke and default settings, on synthetic clips."""
    from avseld.cache import build_feature_cache
    from avseld.config import load_config
    from avseld.synth.generate import generate_dataset

    for profile in ("smoke", "default"):
        for mode in ("baseline", "fullview"):
            cfg = load_config(profile, ["features.device=cpu", f"features.visual_mode={mode}",
                                        f"synth.n_train_clips={n_clips}", "synth.n_test_clips=1"])
            with tempfile.TemporaryDirectory() as tmp:
                root = generate_dataset(cfg.synth, Path(tmp) / "data", n_workers=1, progress=False)
                build_feature_cache(cfg, root, Path(tmp) / "warm", splits=["dev-test"])  # warm-up, imports
                with Timer() as t:
                    build_feature_cache(cfg, root, Path(tmp) / "cache", splits=["dev-train"])
            f = cfg.features
            rows.append({"bench": "feature step per clip (synthetic clips, EfficientNet-Lite0)",
                         "variant": f"{profile} {mode} ({f.frame_width}x{f.frame_height}/{f.resize_short}/{f.crop_size})",
                         "clips": n_clips, "wall_s_per_clip": t.wall / n_clips, "cpu_s_per_clip": t.cpu / n_clips,
                         "est_min_for_520_clips": 520 * t.wall / n_clips / 60})


def bench_loading(rows: list[dict], n_clips: int = 200) -> None:
    import torch

    from avseld.cache import _consolidate, load_split

    rng = np.random.default_rng(0)

    class C:  # minimal clip record
        def __init__(self, name):
            self.name, self.wav, self.room = name, Path(name), "fold3_room1"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shards, per = tmp / "shards", tmp / "pt"
        shards.mkdir()
        per.mkdir()
        clips = [C(f"fold3_room1_mix{i:04d}") for i in range(n_clips)]
        for c in clips:
            a = rng.standard_normal((2, 251, 64)).astype(np.float32)
            v = rng.standard_normal((50, 49)).astype(np.float32)
            lab = np.array([[f, 1, 0, 30, 150, 1] for f in range(0, 50, 2)], float)
            np.savez(shards / f"{c.name}.npz", audio=a, video=v, labels=lab)
            torch.save(torch.from_numpy(a), per / f"{c.name}_a.pt")
            torch.save(torch.from_numpy(v), per / f"{c.name}_v.pt")
            from avseld.labels import encode_adpit

            torch.save(torch.from_numpy(encode_adpit(lab)), per / f"{c.name}_t.pt")
        _consolidate(clips, shards, tmp / "cache" / "dev-train-b", {"n_clips": n_clips, "names": [c.name for c in clips],
                                                                    "rooms": [c.room for c in clips], "labelled": True,
                                                                    "format": 1}, True)
        with Timer() as tp:
            s = 0.0
            for c in clips:
                s += float(torch.load(per / f"{c.name}_a.pt")[0, 0, 0] + torch.load(per / f"{c.name}_v.pt")[0, 0]
                           + torch.load(per / f"{c.name}_t.pt")[0, 0, 0, 0])
        with Timer() as tc:
            sa = load_split(tmp / "cache", "dev-train-b")
            s2 = 0.0
            for i in range(len(sa)):
                a, v, t = (torch.from_numpy(np.array(x[i])) for x in (sa.audio, sa.video, sa.targets))
                s2 += float(a[0, 0, 0] + v[0, 0] + t[0, 0, 0, 0])
        assert abs(s - s2) < 1e-3
    for variant, t in (("torch.load per clip (official)", tp), ("load_split mmap (avseld)", tc)):
        rows.append({"bench": f"read a cached split for one epoch ({n_clips} clips)", "variant": variant,
                     "clips": n_clips, "wall_s_per_clip": t.wall / n_clips, "cpu_s_per_clip": t.cpu / n_clips,
                     "speedup": tp.wall / t.wall})


# the first words of each step's ``bench`` column (``--only`` keeps the other steps' earlier rows)
ROW_PREFIX = {"caching": "caching", "logmel": "log-mel", "visual": "visual", "profiles": "feature step",
              "loading": "read a cached"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=4, help="clips per timed single-thread caching run")
    p.add_argument("--machine-clips", type=int, default=12, help="clips per timed whole-machine caching run")
    p.add_argument("--rounds", type=int, default=2, help="alternated rounds of the caching pipelines (each keeps its fastest)")
    p.add_argument("--cv2-path", default=os.environ.get("AVSELD_CV2_PATH", ""), help="folder holding an OpenCV install")
    p.add_argument("--only", nargs="*", default=None, help="subset: caching logmel visual profiles loading")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 by default: stable numbers on a shared 2-core machine)")
    args = p.parse_args()
    if args.cv2_path:
        sys.path.append(args.cv2_path)
    import torch

    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    notes = [f"torch threads {args.threads}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
             "(wall times are inflated when other jobs share the machine; CPU seconds less so)"]
    steps = {"caching": lambda: bench_caching(args.clips, rows, notes, rounds=args.rounds, machine_clips=args.machine_clips),
             "logmel": lambda: bench_logmel(rows),
             "visual": lambda: bench_visual(rows), "profiles": lambda: bench_profiles(rows, args.clips),
             "loading": lambda: bench_loading(rows)}
    for name, fn in steps.items():
        if args.only is None or name in args.only:
            fn()
    notes.append(f"load average at end {os.getloadavg()[0]:.1f}")
    text = " ".join(n if n.endswith(".") else n + "." for n in notes)
    if args.only is not None:  # keep the rows of the steps not rerun, with the notes of the run that made them
        earlier = _earlier_rows([ROW_PREFIX[s] for s in steps if s not in args.only])
        if earlier:
            rows += earlier[0]
            text += f" Rows of {', '.join(s for s in steps if s not in args.only)} are from an earlier run ({earlier[1]}): {earlier[2]}"
    print(write_result("features", rows, text))


def _earlier_rows(prefixes: list[str]) -> tuple[list[dict], str, str] | None:
    """Rows of ``results/features.json`` whose bench starts with one of ``prefixes``, its date and notes."""
    import json

    from _common import RESULTS

    path = RESULTS / "features.json"
    if not prefixes or not path.is_file():
        return None
    old = json.loads(path.read_text())
    rows = [r for r in old["rows"] if r["bench"].startswith(tuple(prefixes))]
    notes = old["notes"].split(" Rows of ")[0].split(" caching:")[0]  # its caching note went with its caching rows
    return rows, old["machine"]["date"], notes


if __name__ == "__main__":
    main()
