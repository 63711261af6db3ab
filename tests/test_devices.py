"""Where a process computes (avseld.devices): device names, and the error for an unknown one."""

import pytest
import torch

from avseld.config import load_config
from avseld.devices import autocast, resolve_device, setup_distributed
from avseld.errors import ConfigError
from avseld.features import build_visual_extractor


def test_auto_is_cuda_when_present_else_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    env = setup_distributed("cpu")  # a single process: no process group
    assert (env.world_size, env.rank, env.is_main, env.distributed) == (1, 0, True, False)


@pytest.mark.parametrize("key", ["train.device", "features.device"])
def test_an_unknown_device_names_its_config_key(key):
    with pytest.raises(ConfigError, match=f"config key '{key}': unknown device 'gpu9'"):
        if key == "train.device":
            resolve_device("gpu9")
        else:
            build_visual_extractor(load_config("smoke", {"features.device": "gpu9"}).features, weights=None)


def test_cpu_autocast_computes_in_bfloat16_only_when_enabled():
    x = torch.randn(4, 8)
    w = torch.randn(8, 3)
    with autocast(torch.device("cpu"), True):
        assert (x @ w).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), False):
        assert (x @ w).dtype == torch.float32
