"""Feature cache: layout, plain-array loading, cache keys, resume after SIGKILL, weights errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avseld.cache import PARTIAL, build_feature_cache, feature_key, list_cached_splits, load_split
from avseld.config import load_config
from avseld.errors import ConfigError, DataError

SR = 24000
REPO = Path(__file__).resolve().parents[1]
# tiny frames so that the real (packaged) EfficientNet-Lite0 runs in milliseconds
TINY = [
    "features.device=cpu",
    "features.frame_width=64",
    "features.frame_height=32",
    "features.resize_short=32",
    "features.crop_size=32",
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every extraction of this module on one torch thread, as its child processes (OMP_NUM_THREADS=1).

    The bit-identity checks compare caches built here with caches built in children; a backbone
    batch can round differently with 1 and 2 threads (1e-8 on a 2-frame batch, seen when this module
    ran alone with torch's default of 2 threads on 2 cores, instead of after a test that set 1).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_video(path: Path, n_frames: int = 150, fps: int = 30, w: int = 64, h: int = 32, seed: int = 0) -> None:
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        st = out.add_stream("mpeg4", rate=Fraction(fps))
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            img = np.roll(base, i, axis=1)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)


def make_dataset(root: Path, n_train: int = 3, n_eval: int = 1) -> Path:
    """A tiny DCASE-layout dataset: dev-train-x (labelled, 5-s clips) and eval (unlabelled)."""
    import soundfile as sf

    from avseld.dataset import write_label_csv

    rng = np.random.default_rng(1)
    t = np.arange(5 * SR) / SR
    for i in range(n_train + n_eval):
        ev = i >= n_train
        split, kind = ("eval", "eval") if ev else ("dev-train-x", "dev")
        name = f"sample{i}" if ev else f"fold3_room{i % 2 + 1}_mix{i:03d}"
        audio = np.stack([np.sin(2 * np.pi * (300 + 50 * i) * t), 0.5 * rng.standard_normal(t.size)], axis=1) * 0.1
        sf.write(_mk(root / f"stereo_{kind}" / split) / f"{name}.wav",
                 audio.astype(np.float32), SR, subtype="PCM_16")
        write_video(root / f"video_{kind}" / split / f"{name}.mp4", seed=i)
        if not ev:
            rows = np.array([[f, i % 13, 0, 30 - 10 * i, 150 + i, f % 2] for f in range(0, 50, 7)], float)
            if i == 1:  # two same-class instances in some frames
                rows = np.vstack([rows, [[0, 1, 1, -60, 300, 0], [7, 1, 1, -40, 310, 1]]])
            write_label_csv(_mk(root / "metadata_dev" / split) / f"{name}.csv", rows)
    return root


def _mk(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


def _cfg(*extra: str):
    return load_config("smoke", TINY + list(extra))


def _arrays(cache_dir: Path) -> dict[str, np.ndarray]:
    out = {}
    for split in list_cached_splits(cache_dir):
        for f in sorted((cache_dir / split).glob("*.npy")):
            out[f"{split}/{f.name}"] = np.load(f, allow_pickle=False)
    return out


def test_cache_layout_and_load(dataset, tmp_path):
    cfg = _cfg()
    cache_dir = build_feature_cache(cfg, dataset, tmp_path)
    assert cache_dir == tmp_path / feature_key(cfg)
    assert list_cached_splits(cache_dir) == ["dev-train-x", "eval"]
    assert "features:" in (cache_dir / "feature_config.yaml").read_text()
    assert not any((cache_dir / PARTIAL).glob("*/*"))  # shards cleaned up
    tr = load_split(cache_dir, "dev-train")
    assert isinstance(tr.audio, np.memmap) and isinstance(tr.video, np.memmap)
    assert tr.audio.shape == (3, 2, 251, 64) and tr.audio.dtype == np.float32
    assert tr.video.shape == (3, 50, 1)  # 32-pixel crop -> 1x1 map
    assert tr.targets.shape == (3, 50, 6, 5, 13)
    assert tr.rooms == ["fold3_room1", "fold3_room1", "fold3_room2"]
    from avseld.dataset import read_label_csv
    from avseld.labels import encode_adpit

    for i, name in enumerate(tr.names):
        ref = read_label_csv(dataset / "metadata_dev" / "dev-train-x" / f"{name}.csv")
        np.testing.assert_array_equal(tr.labels[name], ref)
        np.testing.assert_array_equal(tr.targets[i], encode_adpit(ref))
    ev = load_split(cache_dir, "eval")
    assert ev.targets is None and ev.labels is None and ev.rooms == [None]
    with pytest.raises(DataError, match="no cached split"):
        load_split(cache_dir, "dev-test")


def test_cache_key_changes_with_config(tmp_path, monkeypatch):
    import avseld.cache as cache

    base = _cfg()
    assert feature_key(base) == feature_key(_cfg())
    for extra in ("features.n_mels=32", "features.audio_extra=[ild]", "features.visual_mode=fullview"):
        assert feature_key(_cfg(extra)) != feature_key(base), extra
    # a change outside the features section keeps the key
    assert feature_key(_cfg("train.lr=0.01")) == feature_key(base)
    # new extraction code (a bumped version) gives a new key for the same config
    monkeypatch.setattr(cache, "FEATURE_CODE_VERSION", cache.FEATURE_CODE_VERSION + 1)
    bumped = feature_key(base)
    monkeypatch.undo()
    assert bumped != feature_key(base)


def test_cache_key_covers_the_label_code(monkeypatch):
    """The targets and label rows live in the cache, so new label code must give a new key."""
    import avseld.cache as cache

    base = _cfg()
    # label code version 1 adds nothing: caches keyed before the version existed stay valid
    legacy = f"{base.section_hash('features')}|features-code-v{cache.FEATURE_CODE_VERSION}"
    if cache.LABEL_CODE_VERSION == 1:
        assert feature_key(base) == hashlib.sha256(legacy.encode()).hexdigest()[:12]
    from avseld.runs import run_id

    keys, ids = {feature_key(base)}, {run_id(base, 0)}
    for version in (cache.LABEL_CODE_VERSION + 1, cache.LABEL_CODE_VERSION + 2):
        monkeypatch.setattr(cache, "LABEL_CODE_VERSION", version)
        keys.add(feature_key(base))
        ids.add(run_id(base, 0))
    assert len(keys) == 3 and len(ids) == 3  # new targets: new caches and new runs
    monkeypatch.setattr(cache, "FEATURE_CODE_VERSION", cache.FEATURE_CODE_VERSION + 1)
    assert feature_key(base) not in keys  # both versions count, each on its own


# What the label code makes of one CSV (rows and ADPIT targets, rounded to 1e-5 so that a last-bit
# difference of cos/sin between machines does not count). A change means that caches made by older
# code hold other targets: bump avseld.cache.LABEL_CODE_VERSION, then update the digest.
LABEL_CODE_DIGEST = {1: "f1200c33f4b27a7a"}
LABEL_FIXTURE = """frame,class,source,azimuth,distance,onscreen
0,1,0,30,150,1
0,1,1,-45,230,0
0,1,2,88,90,1
0,1,3,10,100,0
0,4,0,-90,55,0
3,12,7,12.5,1000,1
3,0,2,90,0,0
3,0,1,-17,320,1
49,6,0,0,75,1
50,6,0,5,75,1
"""


def test_label_code_digest_asks_for_a_version_bump():
    import avseld.cache as cache
    from avseld.dataset import parse_label_csv_text
    from avseld.labels import encode_adpit
    from avseld.layout import N_LABEL_FRAMES

    rows = parse_label_csv_text(LABEL_FIXTURE, "fixture", reference=True)
    targets = encode_adpit(rows, N_LABEL_FRAMES)  # what _consolidate writes to targets.npy
    got = hashlib.sha256(rows.tobytes() + np.round(targets.astype(np.float64), 5).tobytes()
                         + str(targets.shape).encode()).hexdigest()[:16]
    assert got == LABEL_CODE_DIGEST.get(cache.LABEL_CODE_VERSION), (
        f"the label code now encodes the fixture differently (digest {got}): cached targets made by "
        f"older code differ, so bump avseld.cache.LABEL_CODE_VERSION and record the digest here")


def test_fullview_and_extras_cache(dataset, tmp_path):
    cfg = _cfg("features.visual_mode=fullview", "features.fullview_grid=[1,2]", "features.fullview_dim=8",
               "features.audio_extra=[midside,ild,ipd]")
    cache_dir = build_feature_cache(cfg, dataset, tmp_path, splits=["eval"])
    ev = load_split(cache_dir, "eval")
    assert ev.audio.shape == (1, 7, 251, 64) and ev.video.shape == (1, 50, 2, 8)
    proj = np.load(cache_dir / "fullview_projection.npy", allow_pickle=False)
    np.testing.assert_allclose(proj.T @ proj, np.eye(8), atol=1e-5)


_CHILD = textwrap.dedent(
    """
    import sys, time
    import avseld.cache as c
    from avseld.config import load_config
    orig = c._ClipWorker.features
    def slow(self, *a):
        time.sleep(0.4)
        return orig(self, *a)
    c._ClipWorker.features = slow
    cfg = load_config("smoke", sys.argv[3:])
    c.build_feature_cache(cfg, sys.argv[1], sys.argv[2])
    """
)


def test_sigkill_resume_identical(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=6, n_eval=1)
    cfg = _cfg()
    ref_dir = build_feature_cache(cfg, data, tmp_path / "ref")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(data), str(tmp_path / "run"), *TINY], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = tmp_path / "run" / feature_key(cfg) / PARTIAL
    deadline = time.time() + 60
    while time.time() < deadline and len(list(shards.glob("dev-train-x-*/*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(shards.glob("dev-train-x-*/*.npz")))
    assert 2 <= done < 6, "the child was not killed part way"
    run_dir = tmp_path / "run" / feature_key(cfg)
    assert list_cached_splits(run_dir) == []  # nothing mistaken for complete
    build_feature_cache(cfg, data, tmp_path / "run")
    ref, got = _arrays(ref_dir), _arrays(run_dir)
    assert ref.keys() == got.keys() and len(ref) == 7  # 5 arrays + 2 (eval)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    for split in ("dev-train-x", "eval"):
        a = json.loads((ref_dir / split / "meta.json").read_text())
        b = json.loads((run_dir / split / "meta.json").read_text())
        assert a == b


def test_rerun_skips_and_changed_source_rebuilds(dataset, tmp_path, monkeypatch):
    cfg = _cfg()
    build_feature_cache(cfg, dataset, tmp_path, splits=["eval"])
    import avseld.cache as c

    calls = []
    orig = c._ClipWorker.features
    monkeypatch.setattr(c._ClipWorker, "features", lambda self, *a: calls.append(1) or orig(self, *a))
    build_feature_cache(cfg, dataset, tmp_path, splits=["eval"])
    assert calls == []
    wav = dataset / "stereo_eval" / "eval" / "sample3.wav"
    st = wav.stat()
    os.utime(wav, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    build_feature_cache(cfg, dataset, tmp_path, splits=["eval"])
    assert calls == [1]


def test_missing_video_is_a_data_error(tmp_path):
    data = make_dataset(tmp_path / "d", n_train=1, n_eval=0)
    (data / "video_dev" / "dev-train-x" / "fold3_room1_mix000.mp4").unlink()
    with pytest.raises(DataError, match="fold3_room1_mix000.*no video"):
        build_feature_cache(_cfg(), data, tmp_path / "c")


def test_missing_resnet_weights_error(dataset, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = _cfg("features.backbone=resnet50", f"features.resnet50_weights={tmp_path / 'nope.pth'}")
    with pytest.raises(ConfigError, match=r"nope\.pth.*IMAGENET1K_V2.*features\.resnet50_weights"):
        build_feature_cache(cfg, dataset, tmp_path / "c", splits=["eval"])
    from avseld.cli import main

    rc = main(["features", "--profile", "smoke", "--data", str(dataset), "--cache", str(tmp_path / "c"),
               "--set", "features.backbone=resnet50", "--set", f"features.resnet50_weights={tmp_path / 'nope.pth'}"])
    assert rc == 2



_COUNTING_CHILD = textwrap.dedent(
    """
    import sys, time
    import avseld.cache as c
    from avseld.config import load_config
    orig, calls = c._ClipWorker.features, []
    def slow(self, *a):
        calls.append(1)
        time.sleep(0.3)
        return orig(self, *a)
    c._ClipWorker.features = slow
    c.build_feature_cache(load_config("smoke", sys.argv[3:]), sys.argv[1], sys.argv[2])
    print("extracted", len(calls))
    """
)


def test_two_processes_building_one_cache_take_turns(tmp_path):
    """A second builder of the same cache waits for the first (file lock), then finds it done."""
    data = make_dataset(tmp_path / "data", n_train=6, n_eval=1)
    cfg = _cfg()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    args = [sys.executable, "-c", _COUNTING_CHILD, str(data), str(tmp_path / "run"), *TINY]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shards = tmp_path / "run" / feature_key(cfg) / PARTIAL
    deadline = time.time() + 60
    while time.time() < deadline and not list(shards.glob("dev-train-x-*/*.npz")):
        time.sleep(0.05)
    second = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "extracted 7" in out1 and "extracted 0" in out2  # the second one waited, then skipped everything
    ref = _arrays(build_feature_cache(cfg, data, tmp_path / "ref"))
    got = _arrays(tmp_path / "run" / feature_key(cfg))
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def test_two_worker_processes_give_the_same_cache(dataset, tmp_path, monkeypatch):
    """`avseld features --workers 2`: clips extracted in two spawned processes, same arrays and meta."""
    import avseld.cache as c
    from avseld.cli import main

    pooled = []
    orig = c._extract_in_pool
    monkeypatch.setattr(c, "_extract_in_pool", lambda pool, todo, *a: pooled.append(len(todo)) or orig(pool, todo, *a))
    ref_dir = build_feature_cache(_cfg(), dataset, tmp_path / "ref")
    args = ["features", "--profile", "smoke", "--data", str(dataset), "--cache", str(tmp_path / "par"),
            "--workers", "2", "--threads", "1"]
    assert main(args + [x for o in TINY for x in ("--set", o)]) == 0
    assert pooled == [3]  # the 3 dev-train clips went to the pool (the 1-clip eval split needs no pool)
    par_dir = tmp_path / "par" / ref_dir.name  # the worker count is not part of the cache key
    ref, got = _arrays(ref_dir), _arrays(par_dir)
    assert ref.keys() == got.keys() and len(ref) == 7
    for k in ref:
        if ref[k].dtype == np.float32:  # thread counts may change float rounding, nothing more
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
        else:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    for split in ("dev-train-x", "eval"):
        assert json.loads((par_dir / split / "meta.json").read_text()) == json.loads((ref_dir / split / "meta.json").read_text())
    assert not any((par_dir / PARTIAL).glob("*/*"))


def test_worker_process_error_names_the_file_and_keeps_finished_shards(tmp_path):
    data = make_dataset(tmp_path / "d", n_train=4, n_eval=0)
    bad = data / "video_dev" / "dev-train-x" / "fold3_room1_mix002.mp4"
    bad.write_bytes(b"not an mp4 at all")
    cfg = _cfg()
    with pytest.raises(DataError, match="fold3_room1_mix002.mp4"):
        build_feature_cache(cfg, data, tmp_path / "c", n_workers=2, threads_per_worker=1)
    cache_dir = tmp_path / "c" / feature_key(cfg)
    assert list_cached_splits(cache_dir) == []  # no meta.json: nothing looks complete
    shards = {p.name for p in (cache_dir / PARTIAL).glob("dev-train-x-*/*")}
    assert "fold3_room1_mix002.npz" not in shards and all(n.endswith(".npz") for n in shards)
    with pytest.raises(ConfigError, match="n_workers >= 1"):
        build_feature_cache(cfg, data, tmp_path / "c", n_workers=0)
