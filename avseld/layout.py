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


def target_field(name: str) -> int:
    """Position of ``name`` on the field axis of ADPIT / ACCDOA targets (:data:`TARGET_FIELDS`)."""
    return TARGET_FIELDS.index(name)


def target_span(first: str, last: str | None = None) -> slice:
    """The target fields ``first`` .. ``last`` (inclusive) as a slice of the field axis."""
    return slice(target_field(first), target_field(last or first) + 1)

# Label CSV columns (SPEC section 2).
CSV_COLUMNS: tuple[str, ...] = ("frame", "class", "source", "azimuth", "distance", "onscreen")
MAX_TRACKS_PER_CLASS_FRAME = 10  # the official metric keeps at most 10 predicted tracks


# --------------------------------------------------------------------------------------------
# Model output layout (the one place that branches on the output format)
# --------------------------------------------------------------------------------------------
# A model output frame is a flat vector laid out track-major: index = (track, field, class), as in
# the official baseline (``reshape(B, T, n_tracks, n_fields, n_classes)``). Audio-only baseline
# outputs carry no on-screen field (3 x 3 x 13 = 117); audio-visual ones do (3 x 4 x 13 = 156).

from dataclasses import dataclass  # noqa: E402


@dataclass(frozen=True)
class OutputLayout:
    """Multi-ACCDOA output layout: ``n_tracks`` x ``fields`` x ``n_classes`` per frame.

    Args:
        fields: field names in order; always starts with ``x, y, distance``; ``onscreen`` optional.
        n_tracks: tracks per class.
        n_classes: number of classes.
    """

    fields: tuple[str, ...] = OUTPUT_FIELDS
    n_tracks: int = N_TRACKS
    n_classes: int = N_CLASSES

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def has_onscreen(self) -> bool:
        return "onscreen" in self.fields

    @property
    def dim(self) -> int:
        """Width of one output frame (117 audio-only, 156 audio-visual)."""
        return self.n_tracks * self.n_fields * self.n_classes

    def index(self, track: int, field: str, cls: int) -> int:
        """Flat index of ``(track, field, class)`` in an output frame."""
        return (track * self.n_fields + self.fields.index(field)) * self.n_classes + cls

    def field(self, name: str) -> int:
        """Position of field ``name`` on the field axis of :meth:`unflatten`."""
        return self.fields.index(name)

    def span(self, first: str, last: str | None = None) -> slice:
        """The fields ``first`` .. ``last`` (inclusive) as a slice of the field axis of :meth:`unflatten`."""
        return slice(self.field(first), self.field(last or first) + 1)

    def check(self, output) -> None:
        """ValueError unless ``output``'s last axis is one output frame of this layout."""
        if output.shape[-1] != self.dim:
            raise ValueError(f"output width {output.shape[-1]} does not match the model's layout "
                             f"({self.n_tracks} tracks x {self.fields} x {self.n_classes} classes = {self.dim})")

    def unflatten(self, output):
        """``(..., dim)`` -> ``(..., n_tracks, n_fields, n_classes)`` (numpy or torch)."""
        self.check(output)
        return output.reshape(*output.shape[:-1], self.n_tracks, self.n_fields, self.n_classes)

    def split(self, output):
        """Split an output into ``(xy, distance, onscreen)``.

        Args:
            output: ``(..., dim)`` array or tensor.

        Returns:
            xy ``(..., N, 2, K)``, distance ``(..., N, K)``, onscreen ``(..., N, K)`` or None.
        """
        u = self.unflatten(output)
        onscreen = u[..., self.field("onscreen"), :] if self.has_onscreen else None
        return u[..., self.span("x", "y"), :], u[..., self.field("distance"), :], onscreen


AUDIO_LAYOUT = OutputLayout(fields=("x", "y", "distance"))
AV_LAYOUT = OutputLayout(fields=OUTPUT_FIELDS)


def output_layout(onscreen: bool) -> OutputLayout:
    """The layout with or without the on-screen field."""
    return AV_LAYOUT if onscreen else AUDIO_LAYOUT


# ADPIT track permutations over the 6 slots (A0, B0, B1, C0, C1, C2), in the official order.
# Each entry: (slot per output track, group). Groups: 0 = A (one instance), 1 = B, 2 = C.
ADPIT_SLOT_GROUPS: tuple[tuple[int, ...], ...] = ((0, 0, 0), (1, 1, 2), (3, 4, 5))  # base permutation per group
ADPIT_PERMUTATIONS: tuple[tuple[tuple[int, int, int], int], ...] = (
    ((0, 0, 0), 0),
    ((1, 1, 2), 1), ((1, 2, 1), 1), ((1, 2, 2), 1), ((2, 1, 1), 1), ((2, 1, 2), 1), ((2, 2, 1), 1),
    ((3, 4, 5), 2), ((3, 5, 4), 2), ((4, 3, 5), 2), ((4, 5, 3), 2), ((5, 3, 4), 2), ((5, 4, 3), 2),
)
