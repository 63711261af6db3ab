"""The embedded synthetic audio-visual SELD dataset (SPEC section 6): sounds, rooms, video, scenes."""

from avseld.synth.generate import TEST_SPLIT, TRAIN_SPLIT, generate_dataset, plan_dataset, render_clip

__all__ = ["TRAIN_SPLIT", "TEST_SPLIT", "generate_dataset", "plan_dataset", "render_clip"]
