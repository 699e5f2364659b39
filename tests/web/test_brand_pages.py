"""Brand, budget and brief pages in-process: the client page's brand editor saves through the
same update the API's PATCH makes and shows what it saved (errors beside their fields), the
campaign page edits the budget and shows spent, committed and remaining, and the brief page shows
and edits the structured direction (channels ticked from the export presets)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediagen.campaigns import schemas as sc
from mediagen.generations.tables import Generation
from mediagen.services import Services
from tests.web.page_kit import PageWorld, csrf_of, page_world, signed_in


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageWorld]:
    made = page_world(tmp_path_factory, "web-brand")
    yield made
    made.services.db.dispose()


@pytest.fixture
def admin_client(world: PageWorld) -> Iterator[TestClient]:
    with signed_in(world.app) as c:
        yield c


def post(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    token = csrf_of(client.get("/clients").text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=False)


def add_image(services: Services, client_id: str | None, status: str = "completed") -> int:
    with services.db.write() as s:
        row = Generation(
            kind="image",
            prompt="a logo",
            model_id="synth/image",
            engine="synth",
            status=status,
            client_id=client_id,
        )
        s.add(row)
        s.flush()
        return row.id


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


BRAND_FORM = {
    "palette": ["#ff6600", "#003366"],
    "palette_drop": ["1"],  # the second colour is removed
    "palette_new": "#22aa44",
    "palette_add": "on",
    "style_keywords": "bold, sunny",
    "avoid": "dark",
    "music_genres": "house",
    "music_moods": "uplifting",
    "bpm_low": "110",
    "bpm_high": "128",
    "aspects": ["9:16", "16:9"],
    "loudness": "social",
    "fonts": "Inter, Roboto",
}


def test_brand_editor_round_trip(world: PageWorld, admin_client: TestClient) -> None:
    logo = add_image(world.services, "acme")
    add_image(world.services, "acme", status="failed")  # not offered
    page = admin_client.get("/clients/acme")
    assert page.status_code == 200
    assert 'id="brand-none"' in page.text and 'action="/clients/acme/brand"' in page.text
    assert page.text.count('type="radio" name="logo_image_id"') == 2  # none, or the finished one
    assert f'name="logo_image_id" value="{logo}"' in page.text  # acme's finished image is offered

    r = post(admin_client, "/clients/acme/brand", {**BRAND_FORM, "logo_image_id": str(logo)})
    assert r.status_code == 303 and r.headers["location"] == "/clients/acme#brand", r.text
    stored = sc.ClientOut.model_validate(world.services.campaigns.get_client(world.admin, "acme")).brand
    assert stored == sc.Brand.model_validate(
        {
            "palette": ["#ff6600", "#22aa44"],
            "style_keywords": ["bold", "sunny"],
            "avoid": ["dark"],
            "music": {"genres": ["house"], "moods": ["uplifting"], "bpm": [110, 128]},
            "aspects": ["9:16", "16:9"],
            "loudness": "social",
            "logo_image_id": logo,
            "fonts": ["Inter", "Roboto"],
        }
    )
    page = admin_client.get("/clients/acme").text
    shown = text_of(page)
    assert "Brand saved." in shown
    assert "110–128 bpm" in shown and "Inter, Roboto" in shown and f"image {logo}" in shown
    assert 'fill="#22aa44"' in page  # a swatch per colour
    # The editor starts from what is stored: colours as colour inputs, words as typed, boxes ticked.
    assert page.count('type="color" name="palette"') == 2 and 'value="#22aa44"' in page
    assert 'value="bold, sunny"' in page and 'value="9:16" checked' in page
    assert f'name="logo_image_id" value="{logo}" checked' in page

    r = post(admin_client, "/clients/acme/brand/clear", {})
    assert r.status_code == 303
    assert world.services.campaigns.get_client(world.admin, "acme").brand is None


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        ({"bpm_low": "130", "bpm_high": "100"}, "bpm", "low tempo must not be above"),
        ({"bpm_low": "100", "bpm_high": ""}, "bpm", "both ends"),
        ({"bpm_low": "10", "bpm_high": "100"}, "bpm", "40–240"),
        ({"palette_new": "orange"}, "palette", "#rrggbb"),
        ({"logo_other": "999999"}, "logo_image_id", "Image 999999 not found"),
        ({"fonts": "x" * 61}, "fonts", "at most 60"),
    ],
)
def test_brand_errors_show_beside_their_fields(
    world: PageWorld, admin_client: TestClient, change: dict[str, str], field: str, said: str
) -> None:
    r = post(
        admin_client, "/clients/globex/brand", {**BRAND_FORM, "palette": [], "palette_drop": [], **change}
    )
    assert r.status_code == 422, r.text
    m = re.search(rf'<p class="field-error" id="[^"]*{field}-error" role="alert">([^<]*)</p>', r.text)
    assert m and said in html.unescape(m.group(1)), r.text[-3000:]
    assert 'value="bold, sunny"' in r.text  # the form comes back as sent
    assert world.services.campaigns.get_client(world.admin, "globex").brand is None


def test_another_clients_logo_is_refused(world: PageWorld, admin_client: TestClient) -> None:
    theirs = add_image(world.services, "globex")
    r = post(admin_client, "/clients/acme/brand", {"logo_other": str(theirs)})
    assert r.status_code == 422 and "filed under another client" in r.text


def test_limited_user_cannot_reach_another_clients_brand(world: PageWorld) -> None:
    with signed_in(world.app, "limited@example.com") as c:
        assert c.get("/clients/acme").status_code == 404
        assert post(c, "/clients/acme/brand", BRAND_FORM).status_code == 404


def test_campaign_budget_edit_and_display(world: PageWorld, admin_client: TestClient) -> None:
    with world.services.db.write() as s:
        for status, cost, actual in (
            ("completed", 2.0, 1.5),
            ("completed", 0.5, None),
            ("processing", 1.25, None),
        ):
            s.add(
                Generation(
                    kind="audio",
                    prompt="jingle",
                    model_id="meta/musicgen",
                    engine="replicate",
                    status=status,
                    client_id="acme",
                    campaign_id="spring",
                    cost_usd=cost,
                    actual_cost_usd=actual,
                )
            )
    page = admin_client.get("/campaigns/spring").text
    assert 'id="budget"' not in page and 'name="budget_usd"' in page
    r = post(
        admin_client,
        "/campaigns/spring",
        {"name": "Spring Launch", "status": "active", "budget_usd": "$1,000"},
    )
    assert r.status_code == 303, r.text
    assert world.services.campaigns.get_campaign(world.admin, "spring").budget_usd == 1000.0
    page = admin_client.get("/campaigns/spring").text
    assert 'name="budget_usd" type="text" value="1000"' in page
    assert re.search(r'id="budget-spent">\$2(\.00)?<', page)  # 1.50 actual + 0.50 estimate
    assert 'id="budget-committed">$1.25<' in page
    assert 'id="budget-remaining">$996.75<' in page
    assert "estimated cost $3.75 · actual $1.50" in text_of(page)

    r = post(
        admin_client, "/campaigns/spring", {"name": "Spring Launch", "status": "active", "budget_usd": "-5"}
    )
    assert r.status_code == 422
    assert re.search(r'id="budget_usd-error" role="alert">[^<]*greater than or equal to 0', r.text)
    r = post(
        admin_client, "/campaigns/spring", {"name": "Spring Launch", "status": "active", "budget_usd": ""}
    )
    assert r.status_code == 303
    assert world.services.campaigns.get_campaign(world.admin, "spring").budget_usd is None
    assert 'id="budget"' not in admin_client.get("/campaigns/spring").text


def test_brief_fields_on_create_and_on_the_brief_page(world: PageWorld, admin_client: TestClient) -> None:
    page = admin_client.get("/campaigns/spring").text
    assert page.count('type="checkbox" name="channels"') == 8  # every export preset
    r = post(
        admin_client,
        "/campaigns/spring/briefs",
        {
            "title": "Summer drop",
            "text": "Launch it.",
            "objective": "Awareness",
            "key_messages": "Light as air\n\nMade to last\n",
            "channels": ["instagram-reel", "youtube"],
            "lengths": "15, 30",
            "must_haves": "logo end card",
        },
    )
    assert r.status_code == 303, r.text
    brief_id = r.headers["location"].rsplit("/", 1)[1]
    brief = sc.BriefOut.model_validate(world.services.campaigns.get_brief(world.admin, brief_id))
    assert (brief.objective, brief.key_messages, brief.channels, brief.lengths, brief.must_haves) == (
        "Awareness",
        ["Light as air", "Made to last"],
        ["instagram-reel", "youtube"],
        [15.0, 30.0],
        ["logo end card"],
    )
    assert brief.audience is None and brief.tone is None

    page = admin_client.get(f"/briefs/{brief_id}").text
    shown = text_of(page)
    assert "Light as air" in shown and "15 s, 30 s" in shown and "logo end card" in shown
    assert 'value="instagram-reel" checked' in page and 'value="tiktok">' in page
    assert f'href="/briefs/{brief_id}/plans"' in page

    r = post(
        admin_client,
        f"/briefs/{brief_id}",
        {
            "title": "Summer drop",
            "text": "Launch it.",
            "tone": "playful",
            "channels": ["tv-eu"],
            "lengths": "6",
        },
    )
    assert r.status_code == 303, r.text
    brief = sc.BriefOut.model_validate(world.services.campaigns.get_brief(world.admin, brief_id))
    assert (brief.tone, brief.channels, brief.lengths, brief.objective, brief.key_messages) == (
        "playful",
        ["tv-eu"],
        [6.0],
        None,
        [],
    )  # a field left empty is cleared, as the form showed it

    r = post(
        admin_client,
        f"/briefs/{brief_id}",
        {"title": "Summer drop", "lengths": "15, 0", "channels": ["youtube"]},
    )
    assert r.status_code == 422
    assert re.search(r'id="lengths-error" role="alert">[^<]*greater than or equal to 1', r.text)
    assert 'value="youtube" checked' in r.text
    r = post(admin_client, f"/briefs/{brief_id}", {"title": "Summer drop", "channels": ["myspace"]})
    assert r.status_code == 422
    assert re.search(r'id="channels-error" role="alert">Unknown channel \'myspace\'', html.unescape(r.text))
