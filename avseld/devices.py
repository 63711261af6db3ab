"""Where a process computes: its device, the ``torchrun`` process group, mixed precision.

Shared by training (:mod:`avseld.engine`) and inference (:mod:`avseld.inference`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from avseld.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """Where this process runs: world size, rank, local rank and device."""

    world_size: int
    rank: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``. An unknown name is
    a :class:`ConfigError` naming the config ``key`` it came from (``train.device``, ``features.device``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"config key '{key}': unknown device '{name}'") from None


def setup_distributed(device: str = "auto") -> DistEnv:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (gloo on CPU, NCCL on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(1, 0, 0, resolve_device(device))
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(world, rank, local, dev)


def barrier(env: DistEnv) -> None:
    """Wait for every process (a no-op in a single process)."""
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (else itself)."""
    return model.module if hasattr(model, "module") else model


def distribute(model: nn.Module, env: DistEnv) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel under ``torchrun`` (else itself)."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
               find_unused_parameters=bool(getattr(model, "has_unused_parameters", False)))


def autocast(device: torch.device, enabled: bool):
    """Mixed precision: float16/bfloat16 on a GPU, bfloat16 on a CPU; a no-op when not enabled."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if enabled and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)
