"""A request's model inputs with the client's brand applied (campaigns/branding.py).

The brand changes only what the model is given: the prompt input gets the branded text and the
negative prompt input (where the model has one) the words to avoid. The row keeps the prompt as
typed in `prompt`, the branded one in `prompt_sent` (when they differ) and what was applied in
`metadata.brand_applied`, so the asset page can show both side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns.branding import Branded, apply_brand, brand_of, merge_negative
from mediagen.campaigns.schemas import Brand
from mediagen.campaigns.service import CampaignService
from mediagen.catalog.registry import ModelEntry
from mediagen.db.session import Database
from mediagen.errors import Conflict, InvalidInput, MediagenError, invalid

NEGATIVE = "negative_prompt"


def client_brand(
    db: Database,
    campaigns: CampaignService,
    principal: Principal,
    filing: tuple[str | None, str | None, str | None],
) -> Brand | None:
    """The brand of the client a request files under (client, campaign, brief). A filing the
    caller may not use is not reported here: the write transaction resolves it again and says so."""
    client_id, campaign_id, brief_id = filing
    if not any(filing) and principal.clients is None:
        return None  # filed under no client
    with db.read() as s:
        try:
            client_id, _, _ = campaigns.resolve_filing(
                s, principal, client_id=client_id, campaign_id=campaign_id, brief_id=brief_id
            )
        except MediagenError:
            return None
        return brand_of(s, client_id)


def within_budget(
    campaigns: CampaignService, s: Session, campaign_id: str | None, amount: float, *, override: bool
) -> str | None:
    """Refuse (409) what would take the campaign over its budget, in the caller's transaction;
    with `override` (an admin's, checked by the caller) it goes through and the refusal it
    overrode is returned, to be kept on the asset. Free work (synth, local models) never counts."""
    if amount <= 0 or campaign_id is None:
        return None
    try:
        campaigns.check_budget(s, campaign_id, amount)
    except Conflict as exc:
        if not override:
            raise
        return exc.message
    return None


def brandable(entry: ModelEntry) -> bool:
    """Whether the model's prompt describes what to make. A post-production model's prompt is
    the new asset's title (`x-brand: false` in its schema): nothing to brand."""
    prop = entry.properties.get(entry.request_map.get("prompt", "prompt"))
    return isinstance(prop, dict) and prop.get("x-brand", True) is not False


def negative_input(entry: ModelEntry) -> str | None:
    """The model's own name for its negative prompt input, if it has one."""
    name = entry.request_map.get(NEGATIVE, NEGATIVE)
    return name if name in entry.properties else None


@dataclass(frozen=True)
class BrandedInputs:
    named: dict[str, Any]
    parameters: dict[str, Any]
    branded: Branded | None = None

    def row_fields(self, prompt: str, *, brand_off: bool) -> tuple[str | None, dict[str, Any]]:
        """(`prompt_sent`, metadata) for each row: the sent prompt only when it differs."""
        meta: dict[str, Any] = {"brand_off": True} if brand_off else {}
        if self.branded is None:
            return None, meta
        if self.branded.applied:
            meta["brand_applied"] = list(self.branded.applied)
        sent = self.branded.prompt_sent
        return (sent if sent != prompt else None), meta


def brand_inputs(
    brand: Brand | None, entry: ModelEntry, kind: str, named: dict[str, Any], parameters: dict[str, Any]
) -> BrandedInputs:
    """The request's named fields and parameters with `brand` applied to the prompt (a no-op
    without a brand, or for a model whose prompt is a title)."""
    prompt = named.get("prompt")
    if brand is None or not isinstance(prompt, str) or not brandable(entry):
        return BrandedInputs(named, parameters)
    negative = negative_input(entry)
    branded = apply_brand(brand, prompt, kind, negative_input=negative is not None)
    if not branded.prompt_sent:
        raise invalid(
            "prompt",
            "nothing is left once the client's words to avoid are taken out; rephrase it, "
            "or send brand: false",
        )
    named = {**named, "prompt": branded.prompt_sent}
    parameters = dict(parameters)
    if negative is not None and branded.negative_prompt:
        # Where the caller gave a negative prompt (by either name), the brand's words join it.
        where = next((k for k in (NEGATIVE, negative) if k in parameters), None)
        if where is not None:
            given = parameters[where]
            parameters[where] = merge_negative(
                given if isinstance(given, str) else None, branded.negative_prompt
            )
        else:
            named[NEGATIVE] = merge_negative(named.get(NEGATIVE), branded.negative_prompt)
    return BrandedInputs(named, parameters, branded)


def explain_length(exc: InvalidInput, inputs: BrandedInputs) -> InvalidInput:
    """A prompt over the model's limit only because of the brand says so."""
    if inputs.branded is None or exc.field != "prompt":
        return exc
    return invalid(
        "prompt",
        f"{exc.message} with the client's brand applied ({len(inputs.branded.prompt_sent)} characters); "
        "shorten it, or send brand: false",
    )
