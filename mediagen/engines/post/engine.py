"""`PostEngine`: compositions of stored assets (`post/compose`, `post/master`) rendered here.

It is an ordinary inline engine: the pipeline hands it the recipe with every referenced asset
already fetched to a local file (the catalog entry's nested `media_inputs`), so queueing,
retries, filing, progress, cancel and ingest are the same as for any generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediagen.engines.base import BaseEngine, Capabilities, EngineError, Finished, InputError, Job, OutputFile
from mediagen.engines.post.recipe import Clip, Music, Recipe, Transition
from mediagen.vocabulary import Kind

AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}


class Canceled(EngineError):
    def __init__(self) -> None:
        super().__init__("canceled while rendering", retryable=False)


def recipe_from(inputs: dict[str, Any]) -> Recipe:
    """The engine's recipe from validated inputs whose asset ids are now local paths."""
    clips = []
    for item in inputs.get("clips") or []:
        if item.get("video_id") is not None:
            clips.append(
                Clip(
                    Path(str(item["video_id"])),
                    "video",
                    start=float(item.get("in") or 0.0),
                    end=item.get("out"),
                )
            )
        else:
            clips.append(
                Clip(
                    Path(str(item["image_id"])),
                    "image",
                    duration=float(item.get("duration") or 3.0),
                    zoom=bool(item.get("zoom", False)),
                )
            )
    music_in = inputs.get("music")
    music = None
    if music_in:
        music = Music(
            Path(str(music_in["audio_id"])),
            offset=float(music_in.get("offset") or 0.0),
            start=float(music_in.get("start") or 0.0),
            loop=bool(music_in.get("loop", False)),
            fade_in=float(music_in.get("fade_in") or 0.0),
            fade_out=float(music_in.get("fade_out") or 0.0),
            mode=music_in.get("mode") or "replace",
        )
    transition_in = inputs.get("transition") or {}
    return Recipe(
        clips=clips,
        transition=Transition(
            transition_in.get("type") or "cut", float(transition_in.get("duration") or 0.0)
        ),
        music=music,
        aspect=inputs.get("aspect") or "16:9",
        fit=inputs.get("fit") or "crop",
        background=inputs.get("background") or "blur",
        length=float(inputs["length"]) if inputs.get("length") is not None else None,
        loudness=inputs.get("loudness"),
        fps=int(inputs.get("fps") or 30),
    )


class PostEngine(BaseEngine):
    name = "post"
    capabilities = Capabilities(inline=True)

    def preflight(
        self, model_id: str, inputs: Mapping[str, Any], durations: Mapping[str, float | None]
    ) -> None:
        """In and out points, and a target length, checked against the stored clips' lengths: a
        recipe that cannot be cut is a 422 now, not a failed asset later."""
        from mediagen.engines.post.timeline import plan

        recipe = recipe_from(dict(inputs))
        if not recipe.clips:
            return
        lengths = [
            durations.get(f"clips[{i}].video_id") if clip.kind == "video" else None
            for i, clip in enumerate(recipe.clips)
        ]
        plan(recipe, lengths)

    def submit(self, job: Job) -> Finished:
        from mediagen.engines.post.render import render_audio, render_video

        recipe = recipe_from(job.inputs)
        control = job.control

        def progress(fraction: float) -> None:
            if control.cancelled():
                raise Canceled()
            control.progress(fraction, "rendering")

        if job.kind is Kind.VIDEO:
            if not recipe.clips:
                raise InputError("a video composition needs at least one clip", field="clips")
            out = job.workdir / "composition.mp4"
            meta = render_video(recipe, out, progress)
            return Finished([OutputFile("main", out, "video/mp4")], metadata={"composition": meta})
        if recipe.clips:
            raise InputError("an audio master takes music only, no clips", field="clips")
        if recipe.music is None:
            raise InputError("an audio master needs music", field="music")
        fmt = str(job.inputs.get("output_format") or "mp3")
        out = job.workdir / f"master.{fmt}"
        meta = render_audio(recipe, out, fmt, progress)
        return Finished([OutputFile("main", out, AUDIO_TYPES[fmt])], metadata={"composition": meta})
