"""avseld: audio-visual sound event localization and detection (DCASE 2025 Task 3, stereo + video).

The package is imported lazily: ``import avseld`` does not import torch.
"""

__version__ = "0.1.0"
