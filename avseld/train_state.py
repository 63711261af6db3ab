"""What a training run carries from step to step and restores on resume: optimizer, learning-rate
schedule, gradient scaler, the weights' moving average, epoch and step counters, best score, and the
checkpoints that hold them.

The optimizer follows the official DCASE 2025 baseline (Adam); ``last.pt`` holds everything an exact
resume needs (model, optimizer, schedule, scaler, average and RNG states), ``best.pt`` the selected
weights: those that were validated, i.e. the average when ``train.ema_decay`` > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avseld.checkpoint import load_model_state, save_checkpoint
from avseld.errors import CheckpointError, ConfigError


def build_optimizer(model: nn.Module, tc) -> torch.optim.Optimizer:
    """Adam (baseline), AdamW (decoupled weight decay) or plain SGD over every parameter."""
    if tc.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


def build_weight_average(model: nn.Module, decay: float):
    """An exponential moving average of ``model``'s weights and buffers (Polyak averaging; torch's
    ``AveragedModel``): after every optimizer step, ``avg = decay * avg + (1 - decay) * weights``, the
    first step copying. Buffers (BatchNorm statistics) are averaged too, so the average needs no
    BatchNorm pass of its own. None when ``decay`` is 0 (the baseline's recipe)."""
    if decay <= 0:
        return None
    if not decay < 1:
        raise ConfigError(f"config key 'train.ema_decay': {decay} must be below 1 (0 turns the average off)")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def warmup_cosine_factor(step: int, total: int, warmup_frac: float, final_ratio: float) -> float:
    """lr multiplier at optimizer step ``step`` (0-based) of ``total``: linear warm-up from
    1/warmup_steps to 1 over ``round(warmup_frac * total)`` steps, then cosine from 1 to ``final_ratio``
    at the last step."""
    warm = max(0, round(warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    span = max(1, total - warm - 1)
    progress = min(1.0, (step - warm) / span)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, tc, steps_per_epoch: int):
    """The learning-rate schedule of ``train.scheduler`` (None for a constant rate).

    ``cosine`` steps once per epoch; ``warmup_cosine`` once per optimizer step over
    ``epochs x steps_per_epoch`` steps (:func:`warmup_cosine_factor`).
    """
    if tc.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tc.epochs)
    if tc.scheduler == "warmup_cosine":
        total = max(1, tc.epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step, total, tc.warmup_frac, tc.lr_final_ratio))
    return None


@dataclass
class TrainState:
    """The optimizer side of a run and its counters.

    Attributes:
        optimizer, scheduler, scaler: as built by :meth:`build` (scheduler and scaler may be None).
        average: the moving average of the weights (:func:`build_weight_average`; None when off).
        step_per_batch: the scheduler steps after every optimizer step (else once per epoch).
        epoch: epochs completed.
        global_step: optimizer steps taken.
        best_score: the best selection score so far (-inf before the first validation).
        best_epoch: the epoch of ``best.pt`` (1-based; 0 before the first).
        wall_s: training seconds so far, over every resume.
    """

    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    scaler: Any = None
    average: Any = None
    step_per_batch: bool = False
    epoch: int = 0
    global_step: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    wall_s: float = 0.0

    @classmethod
    def build(cls, model: nn.Module, tc, steps_per_epoch: int, device: torch.device, use_amp: bool) -> "TrainState":
        """Optimizer, schedule, (float16 autocast on a GPU without bfloat16 only) a gradient scaler and
        (``train.ema_decay`` > 0) the weights' moving average."""
        optimizer = build_optimizer(model, tc)
        scheduler = build_scheduler(optimizer, tc, steps_per_epoch)
        scaler = (torch.amp.GradScaler("cuda")
                  if use_amp and device.type == "cuda" and not torch.cuda.is_bf16_supported() else None)
        return cls(optimizer, scheduler, scaler, build_weight_average(model, tc.ema_decay),
                   step_per_batch=tc.scheduler == "warmup_cosine")

    def evaluated(self, model: nn.Module) -> nn.Module:
        """The weights that are validated, selected into ``best.pt`` and predicted with: the moving
        average when there is one, else ``model`` itself."""
        return model if self.average is None else self.average.module

    def optimizer_step(self, model: nn.Module, grad_clip: float) -> None:
        """Clip the gradients of ``model`` (``grad_clip`` > 0), step the optimizer (through the scaler),
        update the moving average, count the step and advance a per-step schedule."""
        if self.scaler is not None and grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(model)
        self.global_step += 1
        if self.scheduler is not None and self.step_per_batch:
            self.scheduler.step()

    def end_epoch(self) -> None:
        """Count the epoch and advance a per-epoch schedule."""
        if self.scheduler is not None and not self.step_per_batch:
            self.scheduler.step()
        self.epoch += 1

    def restore(self, model: nn.Module, state: dict[str, Any], path: Path, device: torch.device) -> None:
        """Load model, optimizer, schedule, scaler, average, counters and RNG states of a ``last.pt`` (``path``).

        Raises:
            CheckpointError: the checkpoint was written with the average off and the run now has it on,
                or the other way round (``train.ema_decay`` changed).
        """
        load_model_state(model, state, path)
        has_average = state.get("average_state") is not None
        if has_average != (self.average is not None):
            raise CheckpointError(f"{path}: written with the weights' moving average {'on' if has_average else 'off'}, "
                                  f"but config key 'train.ema_decay' now turns it {'off' if has_average else 'on'}")
        if self.average is not None:
            self.average.load_state_dict(state["average_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        if self.scheduler is not None and state.get("scheduler_state") is not None:
            self.scheduler.load_state_dict(state["scheduler_state"])
        if self.scaler is not None and state.get("scaler_state") is not None:
            self.scaler.load_state_dict(state["scaler_state"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.wall_s = float(state["train_wall_s"])
        torch.set_rng_state(state["rng_torch"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)

    def select(self, score: float | None) -> bool:
        """Whether the epoch just completed is the new best: always without a validation ``score``, else
        when it ties or beats the best so far (ties go to the later epoch, as the baseline)."""
        if score is None:
            self.best_epoch = self.epoch
            return True
        if score >= self.best_score:
            self.best_score, self.best_epoch = score, self.epoch
            return True
        return False

    def save(self, best_path: Path, last_path: Path, model: nn.Module, improved: bool, device: torch.device,
             meta: dict[str, Any], world_size: int) -> None:
        """Write ``best.pt`` (when ``improved``: the :meth:`evaluated` weights) and ``last.pt`` (``model``
        with everything :meth:`restore` reads); ``meta``: entries of both (config text, seed, run id)."""
        common = dict(meta, epoch=self.epoch, global_step=self.global_step, best_score=self.best_score,
                      best_epoch=self.best_epoch, train_wall_s=self.wall_s, world_size=world_size)
        if improved:
            save_checkpoint(best_path, self.evaluated(model), **common)
        save_checkpoint(
            last_path, model, **common,
            average_state=self.average.state_dict() if self.average is not None else None,
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict() if self.scheduler is not None else None,
            scaler_state=self.scaler.state_dict() if self.scaler is not None else None,
            rng_torch=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        )
