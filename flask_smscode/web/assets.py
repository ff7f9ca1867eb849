"""What the blueprint serves besides the two operations: the front-end helper
(``/sms/static/smscode.js``) and the OpenAPI document (``GET /sms/openapi.json``).

Both are public and identical for every visitor, unlike the operations' answers (which are
``no-store``): the script is cached for a year when asked for with the version query that
:func:`script_url` adds (a new release changes the URL, so no stale script survives an
upgrade), and revalidated by ETag otherwise.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, send_from_directory, url_for
from werkzeug.exceptions import NotFound

from flask_smscode.extension import get_service

SCRIPT = "smscode.js"
STATIC_FOLDER = Path(__file__).resolve().parent / "static"
VERSIONED_MAX_AGE_SECONDS = 365 * 86400
# The paths as written in openapi.yaml; the served copy uses where the blueprint is mounted.
DOCUMENT_PREFIX = "/sms"


def script_url() -> str:
    """The versioned URL of the helper script, for templates: ``{{ smscode_script_url() }}``.

    Uses the blueprint registered as ``smscode`` (its default name)."""
    return url_for("smscode.static", filename=SCRIPT, v=_version())


@cache
def _version() -> str:
    """The package's version, looked up on first use: importlib.metadata is a few
    milliseconds of the blueprint's import line otherwise."""
    from flask_smscode._version import __version__

    return __version__


@cache
def _document() -> dict[str, Any]:
    """The packaged document, parsed once per process (PyYAML only when first served)."""
    import yaml

    text = (files("flask_smscode") / "openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def openapi_document(prefix: str) -> dict[str, Any]:
    """The document with its paths moved under ``prefix`` (the blueprint's mount point,
    ``/sms`` unless ``url_prefix`` says otherwise), so a generated client calls the right URLs."""
    document = copy.deepcopy(_document())
    document["paths"] = {
        (
            prefix + path[len(DOCUMENT_PREFIX) :]
            if path.startswith(DOCUMENT_PREFIX + "/")
            else path
        ): item
        for path, item in document["paths"].items()
    }
    return document


def openapi_view() -> Response:
    """``GET /sms/openapi.json``; 404 when ``SMSCODE_OPENAPI_ENABLED`` is false."""
    if not get_service().settings.openapi_enabled:
        raise NotFound()
    prefix = url_for(".send").rsplit("/", 1)[0]
    body = json.dumps(openapi_document(prefix), ensure_ascii=False, indent=1)
    response = current_app.response_class(body, mimetype="application/json")
    response.add_etag()
    response.make_conditional(request)  # 304 for a matching If-None-Match
    return public_cache(response, versioned=False)


def static_view(filename: str) -> Response:
    """``GET /sms/static/<file>`` (the helper script), with :func:`public_cache`'s headers.

    The blueprint's own route rather than Flask's ``static_folder`` one, so the cache
    headers are set here and the blueprint needs no after-request hook (which would cost
    every send and verify Flask's hook dispatch)."""
    response = send_from_directory(STATIC_FOLDER, filename)
    return public_cache(response, versioned=request.args.get("v") == _version())


def public_cache(response: Response, *, versioned: bool) -> Response:
    """Cache headers of the public endpoints: a year for the versioned script URL, else
    revalidate every time (ETag), so an unversioned URL never serves an old script."""
    if versioned and response.status_code in (200, 304):
        response.headers["Cache-Control"] = (
            f"public, max-age={VERSIONED_MAX_AGE_SECONDS}, immutable"
        )
    elif response.status_code in (200, 304):
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "no-store"
    return response


def register_assets(blueprint: Blueprint) -> None:
    """Add the document route, the template helper and the setting's check to ``blueprint``
    (whose ``static_folder`` serves the script)."""
    blueprint.add_url_rule("/static/<path:filename>", "static", static_view, methods=["GET"])
    blueprint.add_url_rule("/openapi.json", "openapi", openapi_view, methods=["GET"])
    blueprint.add_app_template_global(script_url, "smscode_script_url")
