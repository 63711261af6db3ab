"""The task's fixed dimensions and the model output layout: the one place that knows the shapes.

Everything that depends on the number of classes, tracks, output fields or label frames imports
it from here (SPEC sections 1 and 4; DCASE 2025 Task 3).
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "femaleSpeech",
    "maleSpeech",
    "clapping",
    "telephone",
    "laughter",
    "domesticSounds",
    "footsteps",
    "doorCupboard",
    "music",
    "musicalInstrument",
    "waterTap",
    "bell",
    "knock",
)
N_CLASSES = len(CLASS_NAMES)  # 13

LABEL_HOP_S = 0.1  # one label frame every 100 ms
CLIP_DURATION_S = 5.0
N_LABEL_FRAMES = 50  # label frames per 5-s clip
SAMPLE_RATE = 24000
N_AUDIO_CHANNELS = 2

# Multi-ACCDOA output: 3 tracks per class, each (x, y, distance, on-screen); activity = |(x, y)|.
N_TRACKS = 3
OUTPUT_FIELDS: tuple[str, ...] = ("x", "y", "distance", "onscreen")
N_OUTPUT_FIELDS = len(OUTPUT_FIELDS)

# ADPIT targets: 6 track slots per class (1 for a single instance, 2 for two, 3 for three)
# x (activity, x, y, distance_m, onscreen).
N_ADPIT_SLOTS = 6
TARGET_FIELDS: tuple[str, ...] = ("activity", "x", "y", "distance", "onscreen")
N_TARGET_FIELDS = len(TARGET_FIELDS)

# Label CSV columns (SPEC section 2).
CSV_COLUMNS: tuple[str, ...] = ("frame", "class", "source", "azimuth", "distance", "onscreen")
MAX_TRACKS_PER_CLASS_FRAME = 10  # the official metric keeps at most 10 predicted tracks
