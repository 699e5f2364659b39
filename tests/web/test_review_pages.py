"""Review and organise on the pages, in-process (no browser): the gallery's search, filters and
order in the URL and back in its form, a page past the end, one duration format, campaign pickers
that name the client, and the asset page's review and comment panels with their data.

Workers are off: assets are made `pending` and then written straight into the state a page shows
(finished, a duration, synth music's tempo and key), since rendering is tested elsewhere; review
fields go through the review and comment services, as the API's PATCH and POST do.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.studio.schemas import AssetPatch
from mediagen.web.filters import fmt_duration, time_ago
from mediagen.web.galleries import PAGE_SIZE
from mediagen.web.listing import campaign_labels
from tests.web.page_kit import PASSWORD, page_world
from tests.web.test_pages import csrf_of

SYNTH_META = {"genre": "lofi_hip_hop", "bpm": 84, "key": "D", "mode": "minor", "scale": "D minor", "seed": 7}


class Studio:
    def __init__(self, app: Any, services: Services, admin: Principal) -> None:
        self.app, self.services, self.admin = app, services, admin

    def make(self, kind: str, prompt: str, *, client_id: str | None = "acme", **values: Any) -> int:
        """An asset as a page shows it: made pending, then written finished with `values`."""
        model = {"audio": "synth/music", "image": "synth/image", "video": "synth/video"}[kind]
        row, _ = self.services.generations.create(
            self.admin, kind, GenerateRequest(prompt=prompt, model=model, client_id=client_id)
        )
        self.set_row(row.id, status="completed", **values)
        return row.id

    def set_row(self, gen_id: int, **values: Any) -> None:
        with self.services.db.write() as s:
            s.execute(update(Generation).where(Generation.id == gen_id).values(**values))

    def review(self, kind: str, gen_id: int, **fields: Any) -> None:
        self.services.review.update(self.admin, kind, gen_id, AssetPatch(**fields))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    world = page_world(tmp_path_factory, "web-review", limited=False, spring=False)
    app, services, admin = world.app, world.services, world.admin
    # Two clients, one campaign name: the pickers must tell them apart.
    services.campaigns.create_campaign(
        admin, sc.CampaignCreate(id="spring-acme", client_id="acme", name="Spring Launch")
    )
    services.campaigns.create_campaign(
        admin, sc.CampaignCreate(id="spring-globex", client_id="globex", name="Spring Launch")
    )
    services.campaigns.create_campaign(admin, sc.CampaignCreate(id="solo", client_id="acme", name="Solo"))
    yield Studio(app, services, admin)
    services.db.dispose()


@pytest.fixture(scope="module")
def tracks(studio: Studio) -> dict[str, int]:
    """Three finished tracks with review fields set, oldest first."""
    ids = {
        "piano": studio.make("audio", "calm piano by the sea", duration=8.4, meta=SYNTH_META),
        "drums": studio.make("audio", "driving drums at night", duration=70.5),
        "strings": studio.make("audio", "warm strings swell", duration=125.0),
    }
    studio.review("audio", ids["piano"], title="Hero cut", rating=5, favorite=True, tags=["Hero", "calm"])
    studio.review("audio", ids["piano"], review_status="approved")
    studio.review("audio", ids["drums"], rating=3, tags=["hero"], notes="the ocean is too loud")
    studio.review("audio", ids["strings"], rating=1, review_status="rejected")
    return ids


@pytest.fixture(scope="module")
def client(studio: Studio) -> Iterator[TestClient]:
    with TestClient(studio.app, base_url="http://testserver") as c:
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 200, r.text
        yield c


def card_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="card [^"]*" data-id="(\d+)"', page)]


def selected(page: str, select_id: str) -> str | None:
    """The value of the selected option of a <select>, or None."""
    m = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert m, f"no select #{select_id}"
    chosen = re.search(r'<option value="([^"]*)"[^>]* selected', m.group(1))
    return chosen.group(1) if chosen else None


# the gallery -----------------------------------------------------------------------------
def test_search_filters_and_order_round_trip_through_the_url(
    client: TestClient, tracks: dict[str, int]
) -> None:
    page = client.get("/music").text
    assert 'placeholder="Search prompt, title, notes, tags"' in page
    assert card_ids(page)[:3] == [tracks["strings"], tracks["drums"], tracks["piano"]]  # newest first

    # Search reaches titles and notes too, not only the prompt.
    found = card_ids(client.get("/music?q=hero").text)
    assert found == [tracks["piano"], tracks["drums"]]  # ranked: a title and a tag beat a tag alone
    assert card_ids(client.get("/music?q=ocean").text) == [tracks["drums"]]

    page = client.get("/music?sort=-rating").text
    assert card_ids(page)[:3] == [tracks["piano"], tracks["drums"], tracks["strings"]]
    assert selected(page, "f-sort") == "-rating"
    assert "rating, high to low" in page
    assert card_ids(client.get("/music?sort=duration").text)[:3] == [
        tracks["piano"],
        tracks["drums"],
        tracks["strings"],
    ]
    assert card_ids(client.get("/music?sort=-duration").text)[0] == tracks["strings"]
    assert card_ids(client.get("/music?sort=created").text)[0] == tracks["piano"]

    query = "tag=HERO&rating_min=3&favorite=true&review_status=approved&sort=-rating"
    page = client.get(f"/music?{query}").text
    assert card_ids(page) == [tracks["piano"]]
    assert selected(page, "f-review") == "approved"
    assert selected(page, "f-favorite") == "true"
    assert selected(page, "f-rating") == "3"
    assert 'id="f-tag" name="tag" type="text" maxlength="64" value="HERO"' in page
    assert card_ids(client.get("/music?tag=hero&rating_min=3").text) == [tracks["drums"], tracks["piano"]]
    assert card_ids(client.get("/music?favorite=false&review_status=rejected").text) == [tracks["strings"]]


def test_values_a_gallery_cannot_use_are_any_and_never_an_error(
    client: TestClient, tracks: dict[str, int]
) -> None:
    page = client.get("/music?sort=bogus&rating_min=9&favorite=maybe&review_status=done&unknown=1").text
    assert set(card_ids(page)) >= set(tracks.values())
    assert selected(page, "f-sort") == "-created"
    assert selected(page, "f-rating") is None


def test_pages_keep_search_filters_and_order(client: TestClient, studio: Studio) -> None:
    for i in range(PAGE_SIZE + 1):
        studio.make("image", f"paged poster {i}", client_id="globex")
    page = client.get("/images?q=poster&client_id=globex&sort=created").text
    assert "Page 1 of 2" in page
    nxt = html.unescape(re.search(r'href="([^"]+)" rel="next"', page).group(1))  # type: ignore[union-attr]
    assert nxt == "/images?q=poster&client_id=globex&sort=created&page=2"
    assert "Next →" in page  # not "Older": the order is the user's
    assert card_ids(client.get(nxt).text) == card_ids(client.get("/images?q=poster&sort=-created").text)[:1]


def test_a_page_past_the_end_goes_to_the_last_page(
    client: TestClient, studio: Studio, tracks: dict[str, int]
) -> None:
    r = client.get("/music?page=99&sort=-rating", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/music?sort=-rating"
    page = client.get("/music?page=99").text
    total = len(card_ids(page))
    assert re.search(rf"1–{total} of {total} tracks", page), "the summary counts what is shown"
    for i in range(PAGE_SIZE + 1):
        studio.make("video", f"clip {i}", client_id="globex")
    r = client.get("/videos?client_id=globex&page=7", follow_redirects=False)
    assert r.headers["location"] == "/videos?client_id=globex&page=2"
    page = client.get(r.headers["location"]).text
    assert f"{PAGE_SIZE + 1}–{PAGE_SIZE + 1} of {PAGE_SIZE + 1} videos" in page and len(card_ids(page)) == 1
    r = client.get("/videos?client_id=nobody&page=3", follow_redirects=False)
    assert r.headers["location"] == "/videos?client_id=nobody"


def test_durations_read_alike_everywhere() -> None:
    assert [fmt_duration(s) for s in (None, 0, 0.4, 0.5, 2.5, 8.0, 8.4, 9.6, 59.5, 70.5, 3600)] == [
        "—",
        "0:00",
        "0:00",
        "0:01",
        "0:03",  # half up, as the browser's Math.round does (Python's round() gives 2)
        "0:08",
        "0:08",
        "0:10",
        "1:00",
        "1:11",
        "1:00:00",
    ]
    app_js = (Path(__file__).parents[2] / "mediagen/web/static/app.js").read_text()
    body = re.search(r"function fmtDuration\(seconds\) \{.*?\n  \}", app_js, re.S)
    assert body and " s`" not in body.group(0), "app.js must not have a second format"


def test_cards_show_title_star_rating_review_tags_and_music(
    client: TestClient, tracks: dict[str, int]
) -> None:
    page = client.get("/music").text
    cards = {card_ids('<li class="card ' + c)[0]: c for c in page.split('<li class="card ')[1:]}
    text = cards[tracks["piano"]]
    assert '<span class="card-title">Hero cut</span>' in text
    assert '<p class="card-prompt">calm piano by the sea</p>' in text
    assert 'data-star aria-pressed="true"' in text and "is-starred" in text
    assert 'aria-label="Rated 5 of 5"' in text
    assert '<span class="review review-approved" data-review-badge>Approved</span>' in text
    assert 'href="/music?tag=hero">hero</a>' in text and ">calm</a>" in text
    assert "84 bpm · D minor · lofi hip hop" in text
    assert '<span class="card-duration">0:08</span>' in text
    assert f'value="audio:{tracks["piano"]}" data-select aria-label="Select “Hero cut”"' in text
    assert '<span class="card-duration">1:11</span>' in page  # the same format at any length
    assert " s</span>" not in page
    # The selection bar and its download link are on the page for review.js.
    assert 'id="bulk-bar"' in page and 'id="bulk-download" href="/api/downloads"' in page


def test_campaign_pickers_name_the_client_where_names_collide(client: TestClient) -> None:
    for url in ("/music", "/generate/music", "/compose"):
        page = client.get(url).text
        assert 'data-client="acme"' in page
        assert ">Spring Launch — Acme</option>" in page, url
        assert ">Spring Launch — Globex</option>" in page, url
        assert ">Solo</option>" in page, url  # a name only one client has stays bare
    # The gallery lists every campaign, each with its client, for review.js to narrow at once.
    page = client.get("/music?client_id=acme").text
    assert ">Spring Launch — Globex</option>" in page


def test_campaign_labels() -> None:
    class Row:
        def __init__(self, id: str, name: str, client_id: str) -> None:
            self.id, self.name, self.client_id = id, name, client_id

    clients = [Row("a", "Acme", ""), Row("b", "Beta", "")]
    rows = [Row("1", "Launch", "a"), Row("2", "launch", "b"), Row("3", "Other", "a"), Row("4", "Gone", "x")]
    assert [label for _, label in campaign_labels(rows, clients)] == [
        "Launch — Acme",
        "launch — Beta",
        "Other",
        "Gone",
    ]


# the asset page --------------------------------------------------------------------------
def test_asset_page_shows_review_history_comments_and_music(
    client: TestClient, studio: Studio, tracks: dict[str, int]
) -> None:
    gen_id = tracks["piano"]
    studio.services.comments.add(studio.admin, "audio", gen_id, at=4.5, text="Bring the piano up here")
    studio.services.comments.add(studio.admin, "audio", gen_id, at=None, text="Lovely overall")
    studio.services.comments.add(studio.admin, "audio", gen_id, at=1.0, text="Intro is long")
    page = client.get(f"/assets/audio/{gen_id}").text

    review = page[page.index('id="review"') : page.index('id="refile-form"')]
    assert 'id="review-badge">Approved</span>' in review
    assert 'id="review-star" aria-pressed="true"' in review
    assert 'id="rating-5" value="5" checked' in review
    assert 'id="review-approved" value="approved" checked' in review
    assert 'value="Hero cut"' in review
    assert 'data-tag="hero"' in review and 'aria-label="Remove tag calm"' in review
    assert re.search(
        r"Approved by admin@example\.com, </span><time datetime=\"[^\"]+\" data-ago>just now</time>", review
    )

    refile = page[page.index('id="refile-form"') :]
    assert '<option value="acme" selected>Acme</option>' in refile

    facts = page[page.index('id="music-facts"') :]
    assert "84 bpm" in facts and "D minor" in facts and "lofi hip hop" in facts

    comments = page[page.index('id="comments"') : page.index('id="comment-form"')]
    assert (
        comments.index("Intro is long") < comments.index("Bring the piano") < comments.index("Lovely overall")
    )
    assert 'data-seek="4.5" aria-label="Play from 0:05">0:05</button>' in comments  # 4.5 s rounds up
    assert comments.count("data-delete-comment") == 3  # an admin may delete any
    assert 'id="comment-timed" checked' in page
    assert '"author": "admin@example.com"' in page  # the JSON review.js starts from


def test_image_pages_take_comments_without_a_time(client: TestClient, studio: Studio) -> None:
    gen_id = studio.make("image", "poster for the launch")
    page = client.get(f"/assets/image/{gen_id}").text
    assert 'data-timed="false"' in page and 'id="comment-timed"' not in page
    assert "No comments yet." in page and 'id="history-empty">Not reviewed yet' in page
    assert 'id="music-facts"' not in page


def test_time_ago() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert [time_ago(now - timedelta(seconds=s), now) for s in (5, 90, 7300, 200_000)] == [
        "just now",
        "1 min ago",
        "2 h ago",
        "2 d ago",
    ]
