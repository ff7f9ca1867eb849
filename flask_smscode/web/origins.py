"""Cross-origin protection and CORS for ``POST /sms/send`` and ``POST /sms/verify``, called
by those two views of :data:`~flask_smscode.web.blueprint.sms_bp` (not through request
hooks: a blueprint hook costs every request of the blueprint Flask's hook dispatch).

The decision is :mod:`flask_smscode.core.origins` (Go's ``CrossOriginProtection``); here it
is applied first thing in the view, so a refused request reaches nothing: no body is parsed,
no per-IP budget, Idempotency-Key, pre-send hook, store or sender is touched. The refusal
is 403 ``cross_site_request`` (JSON through the blueprint's error handler, like every
refusal), counted and logged once through :func:`~flask_smscode.events.observe` with the
request's ``Origin`` normalised and bounded (never the raw header).

Trusted origins (``SMSCODE_TRUSTED_ORIGINS``) get a CORS answer on both endpoints: a
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered with the allowed
method (POST), headers and max age; every answer carries
``Access-Control-Allow-Origin`` for that one origin (never ``*``), ``Vary: Origin``, and
``Access-Control-Allow-Credentials: true`` only with ``SMSCODE_CORS_CREDENTIALS`` (the
endpoints read no cookie; an app whose pre-send hook reads the session needs it). Any other
origin gets no CORS header, so its page cannot read the answer. An app that already puts
Flask-CORS on the blueprint should list its origins here instead, not both.

The report receivers (``/sms/reports/...``) are not checked: Alibaba posts server to server
without ``Origin`` or ``Sec-Fetch-Site``, which would pass anyway.
"""

from __future__ import annotations

from flask import Response, request

from flask_smscode.core.origins import (
    ALLOWED_HEADERS,
    EXPOSED_HEADERS,
    PREFLIGHT_MAX_AGE_SECONDS,
    OriginSettings,
    loggable_origin,
    normalize_origin,
)
from flask_smscode.errors import CrossSiteRequest
from flask_smscode.extension import get_service

# The views whose requests change state (send a code, consume an attempt).
PROTECTED_VIEWS = frozenset({"send", "verify"})


def _settings() -> OriginSettings:
    return get_service().sections.origins


def refuse_cross_origin(view: str) -> None:
    """Raise :class:`CrossSiteRequest` for a browser request from an untrusted origin to
    ``view`` (one of :data:`PROTECTED_VIEWS`)."""
    headers = request.headers
    origin = headers.get("Origin")
    if not _settings().refuses(request.method, headers.get("Sec-Fetch-Site"), origin, request.host):
        return
    from flask_smscode.events import Outcome, observe  # a refusal: off the import line

    observe(Outcome(view, CrossSiteRequest.code, origin=loggable_origin(origin) or "-"))
    raise CrossSiteRequest()


def add_cors_headers(response: Response, view: str) -> Response:
    """The CORS answer of ``view`` (one of :data:`PROTECTED_VIEWS`) for a trusted
    ``Origin``; nothing for any other."""
    origin = request.headers.get("Origin")
    if not origin or view not in PROTECTED_VIEWS:
        return response
    settings = _settings()
    if not settings.trusted:
        return response
    response.vary.add("Origin")  # the answer differs by Origin: caches must key on it
    if not settings.trusts(origin):
        return response
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = normalize_origin(origin) or ""
    if settings.credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers["Access-Control-Allow-Methods"] = "POST"
        headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    else:
        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    return response
