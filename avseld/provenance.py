"""What a run ran on: installed packages, CPU, torch's CPU capability, git commit and dirtiness, the lock
file, and content digests of the feature cache it read, so that a table can be traced to its environment.

Recorded under ``provenance`` in each run's ``metrics.json`` by :func:`avseld.inference.predict`.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU flags that change float arithmetic in torch/oneDNN (AVX-512, bfloat16, AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    except OSError:
        pass
    return []


def git_state(root: Path = REPO) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the source tree the package was imported from (``unknown`` outside git)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if not commit:
            return {"commit": "unknown", "dirty": None}
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def file_digest(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """The machine and the software: Python, platform, CPU model and flags, torch's CPU capability and
    threads, every installed distribution's version, and the digest of ``requirements.lock``."""
    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - older torch
        capability = "unknown"
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    lock = REPO / "requirements.lock"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "torch_cpu_capability": capability,
        "torch_threads": torch.get_num_threads(),
        "lock_sha256": file_digest(lock) if lock.is_file() else None,
        "packages": dict(sorted(packages.items())),
    }


def cache_digests(cache_dir: str | Path, splits: list[str]) -> dict[str, Any]:
    """``{"key": cache folder name, "splits": {split: {file: digest}}}`` of the cached arrays read."""
    cache_dir = Path(cache_dir)
    out: dict[str, Any] = {"key": cache_dir.name, "splits": {}}
    for split in splits:
        d = cache_dir / split
        out["splits"][split] = {p.name: file_digest(p) for p in sorted(d.glob("*.npy"))}
    return out
