"""Error shapes and handlers: every 4xx is `{"detail": "..."}` a person can act on.

Validation errors keep FastAPI's status (422) but flatten the message to `field: problem` and add a
machine-readable `errors` list (the web UI puts each message beside its field). Malformed JSON is a
400, since nothing about the fields can be said yet. 5xx never carry internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediagen.error_map import status_for
from mediagen.errors import MediagenError, ProviderRefused, RateLimited, Unauthenticated, Unavailable
from mediagen.vocabulary import KINDS, Kind

__all__ = [
    "ERROR_RESPONSES",
    "ErrorOut",
    "FieldError",
    "document_errors",
    "install_error_handlers",
    "status_for",
]

log = logging.getLogger("mediagen.api")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    errors: list[FieldError] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed request (e.g. the body is not valid JSON)"},
    401: {"model": ErrorOut, "description": "Missing, wrong or revoked X-API-Key"},
    404: {"model": ErrorOut, "description": "Not found (or not visible to this key)"},
    422: {"model": ErrorOut, "description": "A field is missing or invalid; `errors` names each one"},
}

# What `document_errors` adds to an operation that does not say it already.
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_UNSAFE = frozenset({"post", "put", "patch", "delete"})
_GENERIC: dict[str, str] = {
    "400": "Malformed request (e.g. the body is not valid JSON)",
    "401": "Missing, wrong or revoked X-API-Key",
    "403": "A cookie-authenticated call without X-CSRF-Token, or a key that may not do this",
    "413": "The request body is over the limit for this route",
    "422": "A field is missing or invalid; `errors` names each one",
}


def _error_response(code: str, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or _GENERIC[code],
        "content": {"application/json": {"schema": dict(_ERROR_REF)}},
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what the handlers above really answer, on every operation.

    FastAPI documents its own `HTTPValidationError` for a 422, but `_validation` answers ErrorOut;
    and some statuses come from layers a route does not declare: the key check (401, 403 for a
    cookie caller's unsafe request without its CSRF token), the body limit (413, `api.limits`)
    and the JSON reader (400). Statuses a route declares itself are kept as they are."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FieldError, ErrorOut):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        model_schema.pop("$defs", None)
        components.setdefault(model.__name__, model_schema)
    for item in schema.get("paths", {}).values():
        for method, op in item.items():
            if method not in _UNSAFE | {"get", "head", "options"}:
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            body = op.get("requestBody")
            wanted: list[str] = []
            if op.get("parameters") or body:
                wanted.append("422")
            if op.get("security"):
                wanted.append("401")
                if method in _UNSAFE:
                    wanted.append("403")
            if body:
                wanted.append("413")
                if "application/json" in body.get("content", {}):
                    wanted.append("400")
            for code in wanted:
                responses.setdefault(code, _error_response(code))
            if "422" in responses:
                # Ours, never FastAPI's default shape.
                description = responses["422"].get("description")
                if description in (None, "Validation Error"):
                    description = None
                responses["422"] = _error_response("422", description)
            op["responses"] = dict(sorted(responses.items()))
    text = repr(schema["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in text:
            components.pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """`app.openapi()` with `document_errors` applied (once; FastAPI caches the document)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_response(exc: MediagenError) -> JSONResponse:
    """The `{"detail", "errors": [{field, message}]}` body and headers for a domain error."""
    status = status_for(exc)
    if status == 500:
        log.error("unmapped %s reached the API: %s", type(exc).__name__, exc)
        return JSONResponse({"detail": "Internal server error; the server log has the details"}, 500)
    body: dict[str, Any] = {"detail": exc.detail}
    headers: dict[str, str] = {}
    if exc.field:
        body["errors"] = [{"field": exc.field, "message": exc.message}]
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "APIKey"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, ProviderRefused):
        info = KINDS[Kind(exc.kind)]
        body.update({"id": exc.generation_id, info.id_field: exc.generation_id, "status": "failed"})
        headers["Location"] = f"/api/{info.path}/{exc.generation_id}"
    return JSONResponse(body, status_code=status, headers=headers or None)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "clips", 2, "in") -> "clips[2].in": the way the catalog's checks name places too."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    kind = err.get("type", "")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field"
    return msg[0].lower() + msg[1:] if msg else msg


def install_error_handlers(app: FastAPI) -> None:
    """The handlers below, and an OpenAPI document that describes what they answer."""
    install_openapi(app)

    @app.exception_handler(MediagenError)
    async def _domain_error(_request: Request, exc: MediagenError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        for err in errs:
            if err.get("type") == "json_invalid":
                ctx = err.get("ctx") or {}
                reason = ctx.get("error", "invalid JSON")
                return JSONResponse({"detail": f"Malformed JSON body: {reason}"}, status_code=400)
        no_body = [e for e in errs if e.get("loc") == ("body",) and e.get("type") == "missing"]
        if no_body and len(no_body) == len(errs):
            return JSONResponse({"detail": "A JSON request body is required"}, status_code=400)
        # A bad id or query names what is wrong first; the body is not worth mentioning then.
        errs = [e for e in errs if e not in no_body]
        fields = [{"field": _loc_to_field(e.get("loc", ())), "message": _message(e)} for e in errs]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse({"detail": detail, "errors": fields}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "Internal server error; the server log has the details"}, status_code=500
        )
