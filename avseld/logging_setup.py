"""Logging set-up for the command line and notebooks (the package itself only uses ``logging``)."""

from __future__ import annotations

import logging


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr at INFO (``-v``: DEBUG); idempotent."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    root = logging.getLogger("avseld")
    root.setLevel(level)
    if not any(getattr(h, "_avseld", False) for h in root.handlers):
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        h._avseld = True  # type: ignore[attr-defined]
        root.addHandler(h)
