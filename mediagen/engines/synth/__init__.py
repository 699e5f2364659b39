"""Offline procedural engine: deterministic drafts of music, images and video from a prompt."""

from mediagen.engines.synth.engine import SynthEngine
from mediagen.engines.synth.image import render_image
from mediagen.engines.synth.music import render_music
from mediagen.engines.synth.prompt import Plan, make_plan
from mediagen.engines.synth.video import render_video

__all__ = ["Plan", "SynthEngine", "make_plan", "render_image", "render_music", "render_video"]
