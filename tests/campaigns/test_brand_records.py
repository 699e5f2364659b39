"""A client's brand as a record: replaced whole on update and cleared by null, and its logo checked
to be a completed image that the caller can see, filed under this client or under none; any
other reference is a 422 naming `brand.logo_image_id` and saying what is wrong with it."""

from __future__ import annotations

import pytest

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.errors import InvalidInput
from mediagen.services import Services
from tests.campaigns.conftest import Row

ACME_ONLY = Principal(user_id="u-a", email="a@example.com", role="member", clients=frozenset({"acme"}))


def with_logo(image_id: int) -> sc.ClientUpdate:
    return sc.ClientUpdate(brand=sc.Brand(palette=["#112233"], logo_image_id=image_id))


def test_brand_is_replaced_whole_and_cleared_by_null(services: Services, admin: Principal) -> None:
    first = sc.Brand.model_validate(
        {
            "palette": ["#ff6600"],
            "style_keywords": ["bold"],
            "music": {"genres": ["house"], "bpm": [110, 128]},
        }
    )
    row = services.campaigns.update_client(admin, "acme", sc.ClientUpdate(brand=first))
    assert sc.ClientOut.model_validate(row).brand == first
    second = sc.Brand(avoid=["dark"])
    services.campaigns.update_client(admin, "acme", sc.ClientUpdate(brand=second))
    stored = sc.ClientOut.model_validate(services.campaigns.get_client(admin, "acme")).brand
    assert stored == second and stored.palette == [] and stored.music is None  # nothing merged
    services.campaigns.update_client(admin, "acme", sc.ClientUpdate(name="Acme Inc"))  # brand untouched
    assert services.campaigns.get_client(admin, "acme").brand == second.model_dump(mode="json")
    services.campaigns.update_client(admin, "acme", sc.ClientUpdate.model_validate({"brand": None}))
    assert services.campaigns.get_client(admin, "acme").brand is None


def test_a_logo_of_this_client_or_of_none_is_accepted(
    services: Services, admin: Principal, add_row: Row
) -> None:
    own = add_row(kind="image", client_id="acme", campaign_id=None)
    unfiled = add_row(kind="image", client_id=None, campaign_id=None)
    for image_id in (own, unfiled):
        row = services.campaigns.update_client(admin, "acme", with_logo(image_id))
        assert row.brand is not None and row.brand["logo_image_id"] == image_id
    made = services.campaigns.create_client(
        admin, sc.ClientCreate(id="initech", name="Initech", brand=sc.Brand(logo_image_id=unfiled))
    )
    assert made.brand is not None and made.brand["logo_image_id"] == unfiled


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"kind": "audio"}, "is audio, not an image"),
        ({"kind": "image", "status": "pending"}, "is pending, not completed"),
        ({"kind": "image", "status": "failed"}, "is failed, not completed"),
        ({"kind": "image", "client_id": "globex", "campaign_id": None}, "filed under another client"),
    ],
)
def test_a_logo_that_is_not_a_finished_image_of_the_client_is_refused(
    services: Services, admin: Principal, add_row: Row, values: dict[str, object], said: str
) -> None:
    image_id = add_row(**values)
    with pytest.raises(InvalidInput) as refused:
        services.campaigns.update_client(admin, "acme", with_logo(image_id))
    assert refused.value.field == "brand.logo_image_id" and said in refused.value.message
    assert services.campaigns.get_client(admin, "acme").brand is None  # nothing kept


def test_a_logo_the_caller_cannot_see_reads_as_not_found(
    services: Services, admin: Principal, add_row: Row
) -> None:
    unfiled = add_row(kind="image", client_id=None, campaign_id=None)
    globex = add_row(kind="image", client_id="globex", campaign_id=None)
    for image_id in (unfiled, globex, 10_000):
        with pytest.raises(InvalidInput) as refused:
            services.campaigns.update_client(ACME_ONLY, "acme", with_logo(image_id))
        assert refused.value.field == "brand.logo_image_id"
        assert refused.value.message == f"image {image_id} not found"
