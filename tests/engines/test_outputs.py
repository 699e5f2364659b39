"""outputs_from_value: every output shape Replicate and Cog models return."""

from __future__ import annotations

from mediagen.engines.base import OutputFile
from mediagen.engines.outputs import guess_content_type, outputs_from_value

WAV = "https://replicate.delivery/yhqm/abc/output.wav"
PNG = "https://replicate.delivery/yhqm/abc/spectrogram.png"


def roles(files: list[OutputFile]) -> list[tuple[str, str | None]]:
    return [(f.role, f.url) for f in files]


def test_single_uri_is_main_with_content_type() -> None:
    assert outputs_from_value(WAV) == [OutputFile(role="main", url=WAV, content_type="audio/wav")]


def test_list_first_is_main_rest_numbered() -> None:
    urls = [f"https://replicate.delivery/x/out-{i}.webp" for i in range(3)]
    files = outputs_from_value(urls)
    assert roles(files) == [("main", urls[0]), ("output_1", urls[1]), ("output_2", urls[2])]
    assert {f.content_type for f in files} == {"image/webp"}


def test_list_skips_non_uri_items() -> None:
    assert roles(outputs_from_value(["hello", WAV, 3])) == [("main", WAV)]


def test_object_with_named_main_key() -> None:
    files = outputs_from_value({"spectrogram": PNG, "audio": WAV}, main_key="audio")
    assert roles(files) == [("main", WAV), ("spectrogram", PNG)]
    assert files[1].content_type == "image/png"


def test_object_main_key_guessed_when_not_named() -> None:
    assert roles(outputs_from_value({"spectrogram": PNG, "audio": WAV}))[0] == ("main", WAV)
    assert roles(outputs_from_value({"thumb": PNG, "clip": WAV}))[0] == ("main", PNG)


def test_named_main_key_absent_promotes_nothing() -> None:
    files = outputs_from_value({"spectrogram": PNG}, main_key="audio")
    assert roles(files) == [("spectrogram", PNG)]


def test_object_ignores_text_and_handles_lists() -> None:
    value = {"audio": WAV, "caption": "calm piano", "frames": [PNG, PNG]}
    assert roles(outputs_from_value(value)) == [("main", WAV), ("frames", PNG), ("frames_1", PNG)]


def test_data_url_kept_as_url_with_its_type() -> None:
    data = "data:audio/wav;base64,UklGRg=="
    assert outputs_from_value(data) == [OutputFile(role="main", url=data, content_type="audio/wav")]
    assert outputs_from_value(["data:image/png;base64,AAAA"])[0].content_type == "image/png"


def test_non_files_give_nothing() -> None:
    for value in (None, "", "just text", 42, 1.5, True, {"text": "hi"}, [], ["a", "b"]):
        assert outputs_from_value(value) == []


def test_guess_content_type() -> None:
    assert guess_content_type("https://x/y/out.MP3?sig=1") == "audio/mpeg"
    assert guess_content_type("https://x/y/out.mp4") == "video/mp4"
    assert guess_content_type("https://x/y/noext") is None
    assert guess_content_type("https://x.y/dir.d/noext") is None
    assert guess_content_type("data:,hello") == "text/plain"
