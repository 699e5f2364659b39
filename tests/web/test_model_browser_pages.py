"""The model browser's pages in-process, against the fake Replicate: search with each result's
kind, a model's inputs and example output (allowed by the page's policy), "Add to catalog" for an
admin only, the added model in the generate page's list, and remove; without a token the page
says what to set."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.app import create_app
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.services import Services
from tests.fakes.replicate_server import FakeReplicate
from tests.web.page_kit import PASSWORD, csrf_of, signed_in

pytestmark = pytest.mark.timeout(90)

ACE = "lucataco/ace-step"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        yield server


def make_app(data_dir: Path, **settings: Any) -> Any:
    config = Settings(
        data_dir=data_dir, secret_key="test-secret", generate_rate_limit_per_minute=0, **settings
    )
    config.ensure_dirs()
    upgrade(config.resolved_database_url)
    app = create_app(config, run_workers=False)
    services: Services = app.state.services
    services.auth.create_user(email="admin@example.com", password=PASSWORD, role="admin")
    services.auth.create_user(email="member@example.com", password=PASSWORD)
    return app


@pytest.fixture(scope="module")
def app(fake: FakeReplicate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    made = make_app(
        Path(tmp_path_factory.mktemp("web-models")),
        replicate_api_token=fake.token,
        replicate_base_url=fake.base_url,
        download_allowed_hosts=[fake.delivery_allow_entry, "https://*.replicate.delivery"],
    )
    yield made
    made.state.services.db.dispose()


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def result_block(page: str, model_id: str) -> str:
    m = re.search(rf'<li class="model-result" data-model="{re.escape(model_id)}".*?</li>', page, re.S)
    assert m, f"{model_id} not among the results"
    return m.group(0)


def test_search_shows_kinds_and_add_buttons_for_an_admin(app: Any, fake: FakeReplicate) -> None:
    with signed_in(app, "admin@example.com") as admin:
        r = admin.get("/models", params={"q": "music"})
        assert r.status_code == 200
        lyria = result_block(r.text, "google/lyria-2")
        assert 'data-kind="audio"' in lyria and "Add to catalog" in lyria
        musicgen = result_block(r.text, "meta/musicgen")
        assert "In catalog (built-in)" in musicgen and "Add to catalog" not in musicgen
        # The cover comes from the fake's host, which the page's policy lets images load from.
        assert f'src="{fake.root_url}/covers/google/lyria-2.png"' in lyria
        policy = r.headers["content-security-policy"]
        assert f"img-src 'self' data: blob: {fake.root_url} https://*.replicate.delivery" in policy
        assert f"media-src 'self' blob: {fake.root_url}" in policy
        speech = admin.get("/models", params={"q": "speech"})
        whisper = result_block(speech.text, "openai/whisper")
        assert "Unsupported" in whisper and "without files" in html.unescape(whisper)
        assert "Add to catalog" not in whisper


def test_a_models_page_shows_its_inputs_and_example(app: Any, fake: FakeReplicate) -> None:
    with signed_in(app, "member@example.com") as member:
        r = member.get(f"/models/replicate/{ACE}")
        assert r.status_code == 200
        text = text_of(r.text)
        for name in ("tags", "lyrics", "duration", "scheduler", "reference_audio", "seed"):
            assert f'data-input="{name}"' in r.text
        assert "our prompt" in text and "euler, heun, pingpong" in text
        assert "our audio_id , input_audio" in text and '"[inst]"' in text  # defaults as JSON
        assert f'<audio controls preload="none" src="{fake.example_url(fake.models[ACE])}">' in r.text
        assert "lofi, chill, piano" in text  # the example's input
        assert "Add to catalog" not in r.text  # a member may look, not add
        unsupported = member.get("/models/replicate/meta/meta-llama-3-8b-instruct")
        assert unsupported.status_code == 200 and "makes text" in text_of(unsupported.text)
        assert member.get("/models/replicate/nobody/nothing").status_code == 404


def test_an_admin_adds_generates_from_the_form_list_and_removes(app: Any) -> None:
    with signed_in(app, "admin@example.com") as admin:
        page = admin.get("/models", params={"q": "music"}).text
        r = admin.post(
            "/models/add",
            data={"model": ACE, "q": "music", "csrf_token": csrf_of(page)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/models"
        listed = admin.get("/models")
        assert f"Added {ACE} (audio) to the catalog." in text_of(listed.text)
        assert re.search(rf'<tr data-model="{re.escape(ACE)}">', listed.text)
        assert f'action="/models/{ACE}/remove"' in listed.text
        # The generate page's model list has it, with its own inputs.
        generate = admin.get("/generate/music")
        assert ACE in generate.text and "reference_audio" in generate.text
        assert '<a href="/models" id="browse-models">' in generate.text  # the way here from there
        # Adding it again is refused beside the field, with the page kept.
        again = admin.post(
            "/models/add", data={"model": ACE, "csrf_token": csrf_of(listed.text)}, follow_redirects=False
        )
        assert again.status_code == 422 and "already in the catalog" in text_of(again.text)
        text_model = admin.post(
            "/models/add",
            data={"model": "meta/meta-llama-3-8b-instruct", "csrf_token": csrf_of(listed.text)},
            follow_redirects=False,
        )
        assert text_model.status_code == 422
        assert re.search(r'id="model-error"[^>]*>[^<]*makes text', text_model.text)
        bad = admin.post(
            "/models/add",
            data={"model": "not an id", "csrf_token": csrf_of(listed.text)},
            follow_redirects=False,
        )
        assert bad.status_code == 422 and 'id="model-error"' in bad.text
        removed = admin.post(
            f"/models/{ACE}/remove", data={"csrf_token": csrf_of(listed.text)}, follow_redirects=False
        )
        assert removed.status_code == 303
        after = admin.get("/models").text
        assert "Removed" in text_of(after) and f'<tr data-model="{ACE}">' not in after
        assert ACE not in admin.get("/generate/music").text


def test_a_member_cannot_add_or_remove(app: Any) -> None:
    with signed_in(app, "member@example.com") as member:
        page = member.get("/models").text
        assert "Add by id" not in page
        token = csrf_of(page)
        assert member.post("/models/add", data={"model": ACE, "csrf_token": token}).status_code == 403
        assert member.post(f"/models/{ACE}/remove", data={"csrf_token": token}).status_code == 403
        assert member.post("/models/add", data={"model": ACE}).status_code == 403  # no CSRF token either


def test_without_a_token_the_page_says_what_to_set(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data")
    try:
        with signed_in(app, "admin@example.com") as admin:
            r = admin.get("/models")
            assert r.status_code == 200 and "needs REPLICATE_API_TOKEN" in text_of(r.text)
            searched = admin.get("/models", params={"q": "music"})
            assert searched.status_code == 200 and "set REPLICATE_API_TOKEN" in text_of(searched.text)
    finally:
        app.state.services.db.dispose()
