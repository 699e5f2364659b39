"""The web UI: server-rendered pages over the same services the JSON API uses (see `pages.py`).

Each module holds one family of pages on its own router; `router` joins them, and `mount_web` adds
them and /static to the app.
"""

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from mediagen.web import (
    account,
    assets,
    auth,
    campaigns,
    clients,
    compose,
    galleries,
    generate,
    keys,
    kits,
    models,
    shares,
    takes,
)
from mediagen.web.pages import STATIC_DIR, install_not_found_page

router = APIRouter()
for _family in (auth, account, generate, compose, assets, galleries, clients, campaigns, keys, takes, kits):
    router.include_router(_family.router)
router.include_router(models.router)  # the model browser: /models
router.include_router(shares.router)  # review links: public, under /s/


def mount_web(app: FastAPI) -> None:
    """Adds the pages, /static and the not-found page to the app (called from `mediagen.app`)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    install_not_found_page(app)


__all__ = ["mount_web", "router"]
