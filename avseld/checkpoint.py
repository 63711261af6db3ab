"""Checkpoints that rebuild their model alone and load safely (``torch.load(weights_only=True)``).

A checkpoint is a plain dict of tensors and built-in containers (asteroid-style): format tag,
model name, constructor arguments, state dict, library versions, and for ``last.pt`` the
optimizer, scheduler, grad-scaler and RNG states plus the epoch counters needed for exact resume.
Written atomically; anything carrying a pickled object is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import pickle
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avseld.atomic import save_atomic
from avseld.errors import CheckpointError

FORMAT = "avseld-checkpoint/1"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers."""
    import avseld

    return {
        "avseld": getattr(avseld, "__version__", "unknown"),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def _plain(value: Any) -> Any:
    """Tuples/lists/dicts of built-ins, as ``weights_only`` can read them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")


def save_checkpoint(path: str | Path, model: nn.Module, **state: Any) -> None:
    """Write ``model`` (with ``model_name`` / ``model_kwargs`` attributes) and extra ``state`` atomically.

    Args:
        path: destination ``.pt``.
        model: a model from :func:`avseld.models.build_model` (unwrapped, not DDP).
        state: more entries (optimizer/scheduler state dicts, epoch, RNG states, config text ...).
    """
    ckpt = {
        "format": FORMAT,
        "model_name": model.model_name,
        "model_kwargs": _plain(model.model_kwargs),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "versions": library_versions(),
    }
    ckpt.update(state)
    save_atomic(path, lambda tmp: torch.save(ckpt, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: missing or unreadable file, pickled objects (refused), or not an avseld
            checkpoint; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln or "GLOBAL" in ln]
        if not lines:
            raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or not a torch file)") from None
        raise CheckpointError(
            f"{path}: refused: the checkpoint carries pickled Python objects, which are never loaded "
            f"(weights_only=True allows only tensors and plain containers): {lines[0]}"
        ) from None
    except Exception as e:  # corrupt zip, truncated file, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an avseld checkpoint (expected format '{FORMAT}')")
    for key in ("model_name", "model_kwargs", "model_state"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return ckpt


def load_model_state(model: nn.Module, ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> None:
    """Load ``ckpt``'s weights into ``model``, refusing a checkpoint of another model.

    Raises:
        CheckpointError: different model name, or missing / unexpected / mis-shaped tensors.
    """
    name = getattr(model, "model_name", None)
    if ckpt["model_name"] != name:
        raise CheckpointError(f"{path}: checkpoint is for model '{ckpt['model_name']}', not '{name}'")
    state = model.state_dict()
    got = ckpt["model_state"]
    missing = sorted(set(state) - set(got))
    unexpected = sorted(set(got) - set(state))
    shapes = [k for k in state if k in got and tuple(state[k].shape) != tuple(got[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. '{unexpected[0]}')")
        if shapes:
            k = shapes[0]
            parts.append(f"shape mismatch for '{k}': checkpoint {tuple(got[k].shape)}, model {tuple(state[k].shape)}")
        raise CheckpointError(f"{path}: checkpoint does not fit model '{name}': " + "; ".join(parts))
    model.load_state_dict(got)


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights."""
    from avseld.models import MODELS, build_model

    name = ckpt["model_name"]
    if name not in MODELS:
        raise CheckpointError(f"{path}: unknown model '{name}' (known: {', '.join(MODELS)})")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ckpt["model_kwargs"].items()}
    try:
        model = build_model(name, **kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot rebuild model '{name}': {e}") from None
    load_model_state(model, ckpt, path)
    return model
