"""Config: profiles, overrides, unknown keys, wrong types, hash stability, round trip, CLI."""

import subprocess
import sys

import pytest

from avseld.config import PROFILES, Config, ConfigError, load_config, load_config_file


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_load(profile):
    cfg = load_config(profile)
    assert cfg.profile == profile
    assert cfg.features.n_mels == 64 and cfg.features.hop_length == 480


def test_defaults_are_the_official_baseline():
    cfg = Config()
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (1e-3, 256, 200)
    assert (cfg.features.n_fft, cfg.features.win_length, cfg.features.hop_length) == (1024, 960, 480)
    assert cfg.eval.activity_threshold == 0.5 and cfg.eval.merge_threshold_deg == 15.0


def test_dotted_override_and_types():
    cfg = load_config("smoke", ["train.lr=3e-4", "train.epochs=5", "report.seeds=[3, 4]", "features.backbone=resnet50"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.epochs == 5 and cfg.report.seeds == (3, 4)
    assert cfg.features.backbone == "resnet50"
    # an int given for a float field is accepted and becomes a float
    assert load_config("smoke", ["train.lr=1"]).train.lr == 1.0
    # dict overrides too
    assert load_config("smoke", {"train.batch_size": 4}).train.batch_size == 4


@pytest.mark.parametrize("override, key", [
    ("train.lrr=1", "train.lrr"),
    ("trian.lr=1", "trian"),
    ("model.name.x=1", "model.name.x"),
])
def test_unknown_key_is_named(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config("smoke", [override])


@pytest.mark.parametrize("override, key", [
    ("train.epochs=ten", "train.epochs"),
    ("train.epochs=2.5", "train.epochs"),
    ("train.amp=maybe", "train.amp"),
    ("features.backbone=vgg", "features.backbone"),
    ("report.seeds=1", "report.seeds"),
    ("train.lr=true", "train.lr"),
])
def test_wrong_type_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config("smoke", [override])


def test_unknown_key_in_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochs: 3\n  bogus: 1\n")
    with pytest.raises(ConfigError, match="'train.bogus'"):
        load_config(p)


def test_hash_is_stable_and_sensitive():
    a, b = load_config("default"), load_config("default")
    assert a.hash == b.hash and len(a.hash) == 12
    c = a.with_overrides(["features.n_mels=32"])
    assert c.section_hash("features") != a.section_hash("features")
    # a change outside the features section leaves the feature hash alone
    d = a.with_overrides(["train.lr=0.5"])
    assert d.section_hash("features") == a.section_hash("features")
    assert d.hash != a.hash
    # the hash is a pure function of the values: sha256 of the sorted compact JSON of the section ...
    import hashlib
    import json

    from avseld.config import HASH_NEUTRAL, hashable_dict

    blob = json.dumps({"features": hashable_dict(Config().to_dict())["features"]}, sort_keys=True, separators=(",", ":"))
    assert Config().section_hash("features") == hashlib.sha256(blob.encode()).hexdigest()[:12]
    # keys added later are left out at their neutral value (old caches and runs keep their names), hashed otherwise
    assert HASH_NEUTRAL[("features", "fullview_stride")] == Config().features.fullview_stride == 32
    assert "fullview_stride" not in hashable_dict(Config().to_dict())["features"]
    assert Config().with_overrides(["features.fullview_stride=8"]).section_hash("features") != Config().section_hash("features")
    assert Config().with_overrides(["train.ema_decay=0.99"]).hash != Config().hash == Config().with_overrides(["train.ema_decay=0"]).hash
    # ... and pinned for the built-in defaults: every feature cache's key is derived from it, so a change of
    # a features default (which invalidates every cache) must be deliberate and show up here
    assert Config().section_hash("features") == "4d8c7b4495ba"


def test_save_load_round_trip(tmp_path):
    cfg = load_config("smoke", ["train.lr=2e-4", "report.seeds=[0, 1]"])
    path = tmp_path / "config.yaml"
    cfg.save(path)
    back = load_config_file(path)
    assert back == cfg and back.hash == cfg.hash


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "avseld", *args], capture_output=True, text=True)


def test_cli_config_prints_yaml_and_names_unknown_key():
    ok = _cli("config", "--profile", "smoke", "--set", "train.lr=0.01")
    assert ok.returncode == 0 and "lr: 0.01" in ok.stdout
    bad = _cli("config", "--profile", "smoke", "--set", "train.nope=1")
    assert bad.returncode != 0 and "train.nope" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_help_and_no_torch_on_light_paths():
    out = _cli("--help")
    assert out.returncode == 0 and "evaluate" in out.stdout
    code = ("import sys; from avseld.cli import main; main(['config', '--profile', 'smoke']);"
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
