"""Takes on pages, in-process: the compare page of a take group (and its scoping), the asset page's
takes panel, the generate form started from an asset ("Edit and rerun", a video from an image, a
track to continue), and the defects fixed beside them: kind aliases and tabs that keep the
filing, the styled not-found page, Post/Redirect/Get for new API keys, the client id hint, and
uploads filed where the form files.

Generations run through the real synth pipeline (stepped by hand), so seeds, waveforms and
thumbnails are the real thing.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mediagen.auth.service import Principal
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.services import Services
from mediagen.web.keys import seal, unseal
from mediagen.web.prefill import track_uses
from tests.web.page_kit import csrf_of, page_world, signed_in


# fixtures -----------------------------------------------------------------------------------
class Studio:
    """The app with two tenants (acme, globex), an admin and a user limited to globex."""

    def __init__(self, app: Any, services: Services, admin: Principal) -> None:
        self.app, self.services, self.admin = app, services, admin

    def takes(self, kind: str = "audio", n: int = 3, **fields: Any) -> list[int]:
        """n takes made and run to the end; their ids."""
        short = {"duration": 1} if kind != "image" else {}
        req = GenerateRequest.model_validate({"prompt": "calm piano 90 bpm", "n": n, **short, **fields})
        made = self.services.generations.create_takes(self.admin, kind, req)
        for gen_id in made.ids:
            self.services.pipeline.run(Step.SUBMIT, gen_id)
        return made.ids

    def group_of(self, gen_id: int, kind: str = "audio") -> str:
        group = self.services.generations.get(self.admin, kind, gen_id).take_group
        assert group is not None
        return group


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    world = page_world(tmp_path_factory, "web-takes")
    app, services, principal = world.app, world.services, world.admin
    yield Studio(app, services, principal)
    services.db.dispose()


@pytest.fixture
def admin_client(studio: Studio) -> Iterator[TestClient]:
    with signed_in(studio.app) as c:
        yield c


def embedded(page: str, script_id: str) -> Any:
    m = re.search(rf'<script type="application/json" id="{script_id}">(.*?)</script>', page, re.S)
    assert m, f"no #{script_id} on the page"
    return json.loads(m.group(1))


def tab_hrefs(page: str) -> dict[str, str]:
    return {
        g: html.unescape(h)
        for h, g in re.findall(r'<a class="tab" href="([^"]+)" data-tab-gallery="([^"]+)"', page)
    }


# the compare page ---------------------------------------------------------------------------
def test_compare_page_shows_every_take_with_its_seed_status_and_pick(
    studio: Studio, admin_client: TestClient
) -> None:
    ids = studio.takes(seed=4242, campaign_id="spring")
    group = studio.group_of(ids[0])
    r = admin_client.get(f"/takes/{group}")
    assert r.status_code == 200, r.text
    page = r.text
    assert page.count('<li class="take"') == 3
    for i, gen_id in enumerate(ids):
        assert f'data-id="{gen_id}" data-status="completed"' in page
        assert f"<code data-seed>{4242 + i}</code>" in page
    assert page.count("Pick this one") == 3 and "Take A" in page and "Take C" in page
    assert 'id="transport-play"' in page and 'id="takes-audio"' in page  # one shared transport
    assert "Spring Launch" in page  # the breadcrumb names the campaign
    assert f'href="/generate/music?from=audio:{ids[0]}"' in page
    assert 'data-share-target="{&#34;take_group&#34;: &#34;' + group in page  # "Share for review"
    data = embedded(page, "takes-data")
    assert data["take_group"] == group and [t["id"] for t in data["takes"]] == ids
    assert all(t["waveform_url"] for t in data["takes"])
    # After a pick (the API's), the page says so and the badges follow.
    csrf = csrf_of(page)
    r = admin_client.post(f"/api/takes/{group}/winner", json={"id": ids[1]}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    page = admin_client.get(f"/takes/{group}").text
    assert "Take B is the winner." in page
    assert page.count('class="review review-rejected"') == 2 and 'class="review review-approved"' in page


def test_another_tenants_group_and_names_that_are_no_group_are_not_found(studio: Studio) -> None:
    ids = studio.takes(n=2, client_id="acme")
    group = studio.group_of(ids[0])
    with signed_in(studio.app, "limited@example.com") as c:
        r = c.get(f"/takes/{group}")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert group not in r.text and "calm piano" not in r.text
    with signed_in(studio.app) as c:
        for path in ("/takes/tg_0000000000000000", "/takes/not-a-group", f"/takes/{'tg_' + 'x' * 40}"):
            r = c.get(path)
            assert r.status_code == 404 and "Not found" in r.text, path


def test_asset_page_shows_its_seed_its_place_in_the_group_and_edit_and_rerun(
    studio: Studio, admin_client: TestClient
) -> None:
    ids = studio.takes(seed=77)
    group = studio.group_of(ids[1])
    page = admin_client.get(f"/assets/audio/{ids[1]}").text
    assert '<dd data-field="take-seed"><code>78</code></dd>' in page
    assert f'href="/takes/{group}" id="take-group-link">Take 2 of 3 · compare</a>' in page
    assert 'data-action="same-seed"' in page
    assert f'id="edit-rerun" href="/generate/music?from=audio:{ids[1]}"' in page
    assert "New with this model" not in page
    # No continuation model is available here (only the synth), so no such action is offered.
    assert "Continue this track" not in page and "Follow this melody" not in page


# the generate form, started from an asset ---------------------------------------------------
def test_edit_and_rerun_fills_in_model_prompt_every_parameter_seed_and_filing(
    studio: Studio, admin_client: TestClient
) -> None:
    [gen_id] = studio.takes(
        n=1,
        seed=9,
        campaign_id="spring",
        collection="hero-cuts",
        parameters={"bpm": 96, "output_format": "wav"},
    )
    page = admin_client.get(f"/generate/music?from=audio:{gen_id}").text
    start = embedded(page, "start-data")
    assert start["model"] == "synth/music" and start["prompt"] == "calm piano 90 bpm"
    assert start["seed"] == 9
    assert start["parameters"]["bpm"] == 96 and start["parameters"]["output_format"] == "wav"
    assert start["parameters"]["duration"] == 1
    assert start["source"] == {"kind": "audio", "id": gen_id}
    assert 'value="synth/music" checked' in page
    assert '<option value="spring" data-client="acme" selected>' in page
    assert 'id="collection" name="collection" type="text" maxlength="128" value="hero-cuts"' in page
    assert 'id="seed-fixed" value="fixed" checked' in page and 'value="9"' in page
    assert f"Edit and rerun of track #{gen_id}" in page
    # A rerun link that names another kind's tab opens on the asset's own kind.
    r = admin_client.get(f"/generate/images?from=audio:{gen_id}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/generate/music?from=audio%3A{gen_id}"


def test_the_form_starts_only_from_assets_the_user_can_see(studio: Studio) -> None:
    [acme_track] = studio.takes(n=1, client_id="acme")
    [acme_image] = studio.takes(kind="image", n=1, client_id="acme")
    with signed_in(studio.app, "limited@example.com") as c:
        for path in (
            f"/generate/music?from=audio:{acme_track}",
            f"/generate/videos?image_id={acme_image}",
            f"/generate/music?continue={acme_track}",
            "/generate/music?from=audio:nope",
            "/generate/music?from=sound:1",
        ):
            r = c.get(path)
            assert r.status_code == 404, path
            assert "calm piano" not in r.text


def test_an_image_offers_a_video_made_from_it(studio: Studio, admin_client: TestClient) -> None:
    [image_id] = studio.takes(kind="image", n=1, campaign_id="spring")
    page = admin_client.get(f"/assets/image/{image_id}").text
    assert (
        f'href="/generate/videos?image_id={image_id}" data-when-completed>Make a video from this image'
        in page
    )
    page = admin_client.get(f"/generate/videos?image_id={image_id}").text
    start = embedded(page, "start-data")
    # The synth video model takes a start image (request field image_id -> its input "image").
    assert start["model"] == "synth/video" and start["parameters"] == {"image": image_id}
    assert start["prompt"] == "calm piano 90 bpm"
    assert '<option value="spring" data-client="acme" selected>' in page


def test_continue_and_follow_are_offered_by_the_models_that_can(
    studio: Studio, admin_client: TestClient
) -> None:
    catalog = studio.services.catalog

    def uses(model_id: str) -> dict[str, Any]:
        entry = catalog.get(model_id)
        assert entry is not None
        return track_uses(entry)

    assert uses("local/musicgen-small") == {"continue": {}}
    assert uses("local/musicgen-melody") == {"melody": {}}
    assert uses("meta/musicgen") == {"continue": {"continuation": True}, "melody": {"continuation": False}}
    assert uses("local/riffusion") == {} and uses("synth/music") == {}
    # None of those can run here: the form says so rather than pretend.
    [track] = studio.takes(n=1)
    page = admin_client.get(f"/generate/music?continue={track}").text
    assert "No model here can continue a track" in page
    assert embedded(page, "start-data")["parameters"] == {}


# kind tabs and aliases ----------------------------------------------------------------------
def test_kind_names_lead_to_their_tabs_and_tabs_keep_the_filing(admin_client: TestClient) -> None:
    for alias, gallery in (("audio", "music"), ("image", "images"), ("video", "videos")):
        r = admin_client.get(f"/generate/{alias}?campaign_id=spring", follow_redirects=False)
        assert r.status_code == 301, alias
        assert r.headers["location"] == f"/generate/{gallery}?campaign_id=spring"
    assert admin_client.get("/generate/image").status_code == 200
    assert admin_client.get("/generate/sculpture").status_code == 404
    page = admin_client.get("/generate/images?campaign_id=spring&collection=hero").text
    tabs = tab_hrefs(page)
    assert tabs["music"] == "/generate/music?client_id=acme&campaign_id=spring&collection=hero"
    assert tabs["videos"].startswith("/generate/videos?client_id=acme&campaign_id=spring")
    assert tab_hrefs(admin_client.get("/generate/music").text)["images"] == "/generate/images"


def test_generate_form_has_takes_and_a_seed_choice(admin_client: TestClient) -> None:
    page = admin_client.get("/generate/music").text
    assert 'id="takes-n" type="number" inputmode="numeric" min="1" max="8"' in page
    assert 'id="seed-random" value="random" checked' in page
    # The narrow-screen model select lists the unavailable models apart, and disabled.
    compact = page[
        page.index('<select id="model-select"') : page.index("</select>", page.index("model-select"))
    ]
    assert '<optgroup label="Unavailable here">' in compact
    assert re.search(r'<option value="meta/musicgen" disabled>', compact)
    assert '<details class="models-unavailable">' in page


# the not-found page -------------------------------------------------------------------------
def test_unknown_addresses_are_a_page_for_browsers_and_json_for_the_api(studio: Studio) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with TestClient(studio.app) as anonymous:
        r = anonymous.get("/no/such/page", headers=browser)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "Not found" in r.text and 'href="/login"' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        for path, headers in (("/api/no/such", browser), ("/no/such/page", {"Accept": "application/json"})):
            r = anonymous.get(path, headers=headers)
            assert r.status_code == 404 and r.json() == {"detail": "Not Found"}, path
        r = anonymous.get("/static/missing.js", headers={"Accept": "*/*"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    with signed_in(studio.app) as c:
        r = c.get("/campaignz", headers=browser)
        assert (
            r.status_code == 404 and "Back to the music gallery" in r.text and "admin@example.com" in r.text
        )


# API keys: Post/Redirect/Get ----------------------------------------------------------------
def test_a_new_key_redirects_then_shows_its_token_once(studio: Studio) -> None:
    with signed_in(studio.app) as c:
        csrf = csrf_of(c.get("/keys").text)
        r = c.post("/keys", data={"csrf_token": csrf, "name": "prg key"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/keys"
        assert "mg_" not in r.headers["location"]
        # The cookie carries the token only masked.
        cookie = c.cookies["mediagen_session"]
        payload = base64.b64decode(cookie.split(".")[0] + "==").decode()
        page = c.get("/keys").text
        token = re.search(r'id="new-key-value" class="mono" type="text" readonly value="([^"]+)"', page)
        assert token and token.group(1).startswith("mg_")
        assert token.group(1) not in payload
        with TestClient(studio.app) as api:
            assert api.get("/api/clients", headers={"X-API-Key": token.group(1)}).status_code == 200
        # A reload shows the list, not the token again, and makes nothing.
        again = c.get("/keys").text
        assert 'id="new-key-value"' not in again and token.group(1) not in again
        names = [k.name for k in studio.services.auth.keys_visible_to(studio.admin)]
        assert names.count("prg key") == 1


def test_a_masked_token_only_unmasks_with_its_own_keys_hash() -> None:
    sealed = seal("mg_secret-token", "a" * 64)
    assert "mg_" not in sealed
    assert unseal(sealed, "b" * 64) is None  # no hash match: nothing
    assert unseal("not base64!", "a" * 64) is None


# the client form's id hint ------------------------------------------------------------------
def test_client_id_hint_says_what_happens(studio: Studio, admin_client: TestClient) -> None:
    page = admin_client.get("/clients").text
    hint = re.search(r'<p class="hint" id="new-id-hint">([^<]+)</p>', page)
    assert hint and "client_" in hint.group(1) and "e.g. acme" in hint.group(1)
    csrf = csrf_of(page)
    r = admin_client.post("/clients", data={"csrf_token": csrf, "name": "Initech", "id": ""})
    made = re.search(r"<code>(client_[0-9a-f]{12})</code>", r.text)
    assert r.status_code == 200 and made, "an empty id is made for you, as the hint says"
    r = admin_client.post("/clients", data={"csrf_token": csrf, "name": "Umbrella", "id": "umbrella"})
    assert r.status_code == 200 and "<code>umbrella</code>" in r.text


# uploads from the generate form --------------------------------------------------------------
def test_an_upload_from_the_form_is_filed_with_the_forms_filing(
    studio: Studio, admin_client: TestClient
) -> None:
    """The request the form's "or upload a file" makes (test_browser_takes.py makes it through the
    form itself): the file, named, with the filing chosen above."""
    csrf = csrf_of(admin_client.get("/generate/videos?campaign_id=spring").text)
    png = io.BytesIO()
    Image.new("RGB", (32, 18), (200, 80, 40)).save(png, "PNG")
    r = admin_client.post(
        "/api/images/upload",
        params={"title": "logo.png", "client_id": "acme", "campaign_id": "spring"},
        content=png.getvalue(),
        headers={"X-CSRF-Token": csrf, "Content-Type": "image/png"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["campaign_id"] == "spring" and r.json()["client_id"] == "acme"
