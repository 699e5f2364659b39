"""Kit plans on pages: a brief's plans with "Draft a kit plan", the plan page (edit prompts, models
and takes, drop or add deliverables, move scenes up and down, the estimate against the campaign's
budget, approve, run) and the kit page (deliverables per channel with their status, live; review
status; retry a failed one; download the kit; share it for sign-off).

Every form posts to the same service methods the JSON API calls (`services.kits`), so the rules
(versions, what an edit may change, budgets) are the same; an error is shown beside the field it
names (`deliverables[2].prompt` is the prompt box of the third deliverable sent).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mediagen.auth.service import Principal
from mediagen.campaigns.channels import CHANNELS
from mediagen.errors import MediagenError, NotFound, invalid
from mediagen.kits import schemas as ks
from mediagen.vocabulary import KINDS, MAX_ID, Kind
from mediagen.web.forms import FormState, Posted, error_fields, posted_text, render_forms
from mediagen.web.listing import name_of
from mediagen.web.pages import page_router, render
from mediagen.web.session import Me, check_csrf, flash, see_other, svc

router = page_router()
# A path that cannot be a plan or a deliverable names no page (the not-found page, never a query).
PlanId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]

ROLE_LABELS = {"music": "Music bed", "visual": "Key visual", "clip": "Clip", "spot": "Spot"}
ROLE_KIND = {"music": "audio", "visual": "image", "clip": "video"}
STATUS_TEXT = {
    "planned": "Planned",
    "running": "Making",
    "done": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
}
SOURCE_GROUP = "Source material"


# a brief's plans ----------------------------------------------------------------------------------
@router.get("/briefs/{brief_id}/plans", response_class=HTMLResponse)
def brief_plans_page(request: Request, brief_id: str, me: Me) -> Response:
    return brief_plans_render(request, me, brief_id)


def brief_plans_render(request: Request, me: Principal, brief_id: str, error: str | None = None) -> Response:
    services = svc(request)
    brief = services.campaigns.get_brief(me, brief_id)
    plans = services.kits.list_for_brief(me, brief_id, limit=50, offset=0)
    context = {
        "brief": brief,
        "campaign": name_of(services.campaigns.get_campaign, me, brief.campaign_id),
        "plans": plans.plans,
        "draft_error": error,
    }
    return render(
        request, "brief_plans.html", context, me=me, section="campaigns", status_code=409 if error else 200
    )


@router.post("/briefs/{brief_id}/plans", response_class=HTMLResponse)
def draft_plan(request: Request, brief_id: str, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    try:
        plan = svc(request).kits.draft(me, brief_id)
    except NotFound:
        raise
    except MediagenError as exc:
        return brief_plans_render(request, me, brief_id, error=exc.detail)
    flash(request, f"Drafted plan {plan.id} ({plan.planner} planner){': ' + plan.note if plan.note else ''}.")
    return see_other(f"/plans/{plan.id}")


# the plan page ------------------------------------------------------------------------------------
def _models(request: Request) -> dict[str, list[dict[str, Any]]]:
    """The models a deliverable may use, per kind (available ones first)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        rows = svc(request).router.models(str(kind))
        out[str(kind)] = [
            {"id": m.id, "title": m.title, "available": m.available}
            for m in rows
            if not m.id.startswith("post/")
        ]
    return out


def _form_values(plan: ks.PlanOut) -> dict[str, Any]:
    values: dict[str, Any] = {"version": str(plan.version)}
    for d in plan.deliverables:
        values[f"d.{d.id}.prompt"] = d.prompt
        values[f"d.{d.id}.model"] = d.model or ""
        values[f"d.{d.id}.takes"] = str(d.takes)
        values[f"d.{d.id}.parameters"] = json.dumps(d.parameters, indent=1) if d.parameters else ""
        values[f"d.{d.id}.keep"] = "on"
    for s in plan.scenes:
        values[f"s.{s.n}.purpose"] = s.purpose
        values[f"s.{s.n}.prompt"] = s.prompt
        values[f"s.{s.n}.duration"] = f"{s.duration:g}"
    return values


def plan_render(request: Request, me: Principal, plan_id: int, **forms: FormState) -> Response:
    """The plan page; `forms` are the ones sent back with errors: `edit`, `add`, `run`."""
    services = svc(request)
    plan = services.kits.get(me, plan_id)
    brief = services.campaigns.get_brief(me, plan.brief_id)
    context = {
        "plan": plan,
        "brief": brief,
        "campaign": name_of(services.campaigns.get_campaign, me, plan.campaign_id),
        "models": _models(request),
        "roles": ROLE_LABELS,
        "status_text": STATUS_TEXT,
        "channels": CHANNELS,
        "editable": {d.id: d.status in ("planned", "failed") and not d.ids for d in plan.deliverables},
        "can_override": me.is_admin,
    }
    edit = forms.get("edit") or FormState(_form_values(plan))
    add = forms.get("add") or FormState({"role": "clip", "prompt": "", "model": "", "scene": ""})
    run = forms.get("run") or FormState({})
    return render_forms(
        request, "plan.html", context, {"": edit, "add_": add, "run_": run}, me=me, section="campaigns"
    )


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: PlanId, me: Me) -> Response:
    return plan_render(request, me, plan_id)


def _invalid(exc: ValidationError) -> dict[str, str]:
    """A schema error of the edit as {field: message}, fields named as the service names them."""
    out: dict[str, str] = {}
    for err in exc.errors():
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ())).lstrip(".")
        message = "unknown field" if err.get("type") == "extra_forbidden" else str(err.get("msg", "invalid"))
        out.setdefault(field or "form", message[0].upper() + message[1:])
    return out


def _field_of(field: str, sent_items: list[str], sent_scenes: list[int]) -> str:
    """A service error's field as the form names it (`deliverables[1].prompt` → `d.d2.prompt`)."""
    m = re.match(r"^deliverables\[(\d+)\]\.?(\w*)", field)
    if m and int(m.group(1)) < len(sent_items):
        return f"d.{sent_items[int(m.group(1))]}.{m.group(2) or 'prompt'}"
    m = re.match(r"^scenes\[(\d+)\]\.?(\w*)", field)
    if m and int(m.group(1)) < len(sent_scenes):
        return f"s.{sent_scenes[int(m.group(1))]}.{m.group(2) or 'prompt'}"
    return field


def _edit_from_form(plan: ks.PlanOut, posted: FormData) -> tuple[dict[str, Any], list[str], list[int]]:
    """The edit the form describes: kept deliverables with their new prompt, model, takes and
    parameters; scenes in order (a `move` button moves one up or down)."""
    items: list[dict[str, Any]] = []
    for d in plan.deliverables:
        if posted_text(posted, f"d.{d.id}.keep") != "on":
            continue
        item = d.model_dump(exclude=set(ks.SERVER_ITEM_FIELDS))
        item["prompt"] = posted_text(posted, f"d.{d.id}.prompt")
        item["model"] = posted_text(posted, f"d.{d.id}.model") or d.model
        takes = posted_text(posted, f"d.{d.id}.takes", str(d.takes))
        item["takes"] = int(takes) if takes.isdigit() else takes
        raw = posted_text(posted, f"d.{d.id}.parameters").strip()
        try:
            item["parameters"] = json.loads(raw) if raw else {}
        except ValueError:
            raise invalid(f"d.{d.id}.parameters", 'not JSON: write an object, e.g. {"duration": 8}') from None
        if not isinstance(item["parameters"], dict):
            raise invalid(f"d.{d.id}.parameters", 'write a JSON object, e.g. {"duration": 8}')
        items.append(item)
    order = [s.n for s in plan.scenes]
    move = posted_text(posted, "move")
    if ":" in move:
        way, _, n = move.partition(":")
        if n.isdigit() and int(n) in order:
            i = order.index(int(n))
            j = i - 1 if way == "up" else i + 1
            if 0 <= j < len(order):
                order[i], order[j] = order[j], order[i]
    scenes = [
        {
            "n": n,
            "purpose": posted_text(posted, f"s.{n}.purpose"),
            "prompt": posted_text(posted, f"s.{n}.prompt"),
            "duration": posted_text(posted, f"s.{n}.duration"),
        }
        for n in order
    ]
    version = posted_text(posted, "version")
    body = {"version": int(version) if version.isdigit() else None, "deliverables": items, "scenes": scenes}
    return body, [str(i["id"]) for i in items], order


@router.post("/plans/{plan_id}", response_class=HTMLResponse)
def save_plan(request: Request, plan_id: PlanId, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    services = svc(request)
    plan = services.kits.get(me, plan_id)
    values = {k: v for k, v in posted.items() if isinstance(v, str) and k != "csrf_token"}
    sent_items: list[str] = []
    sent_scenes: list[int] = []
    try:
        raw, sent_items, sent_scenes = _edit_from_form(plan, posted)
        services.kits.edit(me, plan_id, ks.PlanEdit.model_validate(raw))
    except MediagenError as exc:
        errors, error = error_fields(exc)
        errors = {_field_of(k, sent_items, sent_scenes): v for k, v in errors.items()}
        return plan_render(
            request, me, plan_id, edit=FormState(values, errors, error, 422 if errors else 409)
        )
    except ValidationError as exc:  # the schema's own checks (an empty prompt, a duration not a number)
        errors = {_field_of(k, sent_items, sent_scenes): v for k, v in _invalid(exc).items()}
        return plan_render(request, me, plan_id, edit=FormState(values, errors, None, 422))
    moved = posted_text(posted, "move")
    flash(request, "Moved the scene." if moved else "Saved. The plan is a draft again: approve it to run it.")
    return see_other(f"/plans/{plan_id}#{'scenes' if moved else 'deliverables'}")


@router.post("/plans/{plan_id}/deliverables", response_class=HTMLResponse)
def add_deliverable(request: Request, plan_id: PlanId, me: Me, posted: Posted) -> Response:
    """A music bed, key visual or clip added to the plan (spots come from the planner or the API)."""
    check_csrf(request, posted_text(posted, "csrf_token"))
    services = svc(request)
    plan = services.kits.get(me, plan_id)
    values = {k: posted_text(posted, k) for k in ("role", "prompt", "model", "scene")}
    role = values["role"] if values["role"] in ROLE_KIND else "clip"
    kind = ROLE_KIND[role]
    taken = {d.id for d in plan.deliverables}
    new_id = next(f"d{i}" for i in range(len(taken) + 1, len(taken) + 100) if f"d{i}" not in taken)
    item: dict[str, Any] = {
        "id": new_id,
        "kind": kind,
        "role": role,
        "model": values["model"] or services.router.default_model(kind),
        "prompt": values["prompt"],
    }
    if role == "clip" and values["scene"].isdigit():
        item["scene"] = int(values["scene"])
    kept = [d.model_dump(exclude=set(ks.SERVER_ITEM_FIELDS)) for d in plan.deliverables]
    try:
        body = ks.PlanEdit.model_validate({"version": plan.version, "deliverables": [*kept, item]})
        services.kits.edit(me, plan_id, body)
    except (MediagenError, ValidationError) as exc:
        errors, error = error_fields(exc) if isinstance(exc, MediagenError) else (_invalid(exc), None)
        errors = {re.sub(r"^deliverables\[\d+\]\.", "", k): v for k, v in errors.items()}
        return plan_render(request, me, plan_id, add=FormState(values, errors, error, 422 if errors else 409))
    flash(request, f"Added {ROLE_LABELS[role].lower()} {new_id}.")
    return see_other(f"/plans/{plan_id}#deliverables")


def _version(posted: FormData) -> int | None:
    version = posted_text(posted, "version")
    return int(version) if version.isdigit() else None


@router.post("/plans/{plan_id}/approve", response_class=HTMLResponse)
def approve_plan(request: Request, plan_id: PlanId, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    try:
        svc(request).kits.approve(me, plan_id, ks.ApproveRequest(version=_version(posted)))
    except NotFound:
        raise
    except MediagenError as exc:
        return plan_render(request, me, plan_id, run=FormState({}, {}, exc.detail, 409))
    flash(request, "Approved. Run it when you are ready.")
    return see_other(f"/plans/{plan_id}#run")


@router.post("/plans/{plan_id}/run", response_class=HTMLResponse)
def run_plan(request: Request, plan_id: PlanId, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    override = posted_text(posted, "override_budget") == "on"
    try:
        svc(request).kits.run(me, plan_id, ks.RunRequest(version=_version(posted), override_budget=override))
    except NotFound:
        raise
    except MediagenError as exc:
        values = {"override_budget": "on" if override else ""}
        return plan_render(request, me, plan_id, run=FormState(values, {}, exc.detail, 409))
    flash(request, "Running: every deliverable is being made.")
    return see_other(f"/plans/{plan_id}/kit")


# the kit page -------------------------------------------------------------------------------------
def kit_groups(plan: ks.PlanOut) -> list[dict[str, Any]]:
    """Spots per channel (in the order of the channel presets), then the source material."""
    by_channel: dict[str, list[ks.DeliverableOut]] = {}
    for d in plan.deliverables:
        key = d.channel if d.role == "spot" and d.channel else SOURCE_GROUP
        by_channel.setdefault(key, []).append(d)
    order = [c for c in CHANNELS if c in by_channel] + [
        c for c in by_channel if c not in CHANNELS and c != SOURCE_GROUP
    ]
    if SOURCE_GROUP in by_channel:
        order.append(SOURCE_GROUP)
    return [{"name": name, "items": by_channel[name]} for name in order]


def asset_page(d: ks.DeliverableOut) -> str | None:
    if d.asset is None:
        return None
    return f"/assets/{d.asset.kind}/{d.asset.id}"


@router.get("/plans/{plan_id}/kit", response_class=HTMLResponse)
def kit_page(request: Request, plan_id: PlanId, me: Me) -> Response:
    services = svc(request)
    plan = services.kits.get(me, plan_id)
    brief = services.campaigns.get_brief(me, plan.brief_id)
    context = {
        "plan": plan,
        "brief": brief,
        "campaign": name_of(services.campaigns.get_campaign, me, plan.campaign_id),
        "groups": kit_groups(plan),
        "roles": ROLE_LABELS,
        "status_text": STATUS_TEXT,
        "asset_page": asset_page,
        "kinds": {str(k): KINDS[Kind(k)].path for k in KINDS},
        "data": {
            "plan_id": plan.id,
            "status": plan.status,
            "ids": [i for d in plan.deliverables for i in d.ids],
        },
    }
    return render(request, "kit.html", context, me=me, section="campaigns")


@router.post("/plans/{plan_id}/items/{item_id}/retry", response_class=HTMLResponse)
def retry_item(request: Request, plan_id: PlanId, item_id: ItemId, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    try:
        svc(request).kits.retry(me, plan_id, item_id)
    except NotFound:
        raise
    except MediagenError as exc:
        flash(request, f"Could not retry {item_id}: {exc.detail}")
        return see_other(f"/plans/{plan_id}/kit")
    flash(request, f"Making {item_id} again.")
    return see_other(f"/plans/{plan_id}/kit")
