"""The systems table: run ids unchanged, one place for a variant's config, the study's re-exports."""

import json
from pathlib import Path

import pytest

from avseld import study
from avseld.config import load_config
from avseld.models import MODELS, uses_video, variant_config_overrides
from avseld.systems import PLUS, SYSTEMS, get_system

FIXTURE = Path(__file__).parent / "fixtures" / "run_ids.json"


@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_run_ids_of_every_system_are_the_ones_earlier_studies_wrote(profile):
    """The ids of commit b49d55c (before the systems moved out of study.py; the AV-SELD+ family since its
    full-view tokens and on-screen-only fusion): committed figures and README
    tables name these folders, so a study must find them. Regenerate only when a change is meant to
    start new runs (a FEATURE_CODE_VERSION bump, a new default)."""
    expected = json.loads(FIXTURE.read_text())[profile]
    base = load_config(profile)
    got = {k: [study.run_id(s.config(base), seed) for seed in range(3)] for k, s in SYSTEMS.items()}
    assert got == expected


def test_every_system_names_a_registered_model_and_a_known_reference():
    for key, s in SYSTEMS.items():
        assert s.key == key and s.model in MODELS and s.reference in SYSTEMS
        s.config(load_config("smoke"))  # every override is a known key of the right type


def test_a_variants_config_is_its_own_systems_overrides():
    assert variant_config_overrides("avseld_plus") == dict(PLUS) == dict(get_system("avseld_plus").overrides)
    assert variant_config_overrides("avseld_no_atem") == {}  # a model without a system of its name
    cfg = get_system("plus_no_dscale").config(load_config("smoke"))
    assert cfg.model.name == "avseld_plus" and cfg.train.distance_scale_m == 1.0
    assert cfg.eval.onscreen_decision == "threshold" and cfg.eval.tune_onscreen_threshold


def test_study_reexports_the_systems():
    assert study.SYSTEMS is SYSTEMS and study.get_system is get_system
    assert study.System is type(SYSTEMS["avseld"]) and not uses_video(get_system("audio_only").model)
