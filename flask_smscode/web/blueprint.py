"""The HTTP layer: parse requests (JSON or form), call the service, answer in JSON.

Every answer, errors included, is a JSON object; refusals carry a stable ``error`` code
(see :mod:`flask_smscode.errors`) and never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from flask_smscode.config import ceil_seconds
from flask_smscode.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from flask_smscode.core.idempotency import REPLAYED_HEADER
from flask_smscode.core.limiter_adapter import limiter_retry_after
from flask_smscode.errors import InvalidRequest, SmsCodeError, Throttled
from flask_smscode.events import stack_only
from flask_smscode.extension import EXTENSION_KEY, get_service, init_app
from flask_smscode.messages import Catalogue, default_catalogue, request_language
from flask_smscode.web.assets import PUBLIC_ENDPOINTS, public_cache, register_assets
from flask_smscode.web.origins import register_origins
from flask_smscode.web.replies import register_replies
from flask_smscode.web.reports import register_reports

logger = logging.getLogger("flask_smscode")

# static/ holds the front-end helper: /sms/static/smscode.js (see assets.py).
sms_bp = Blueprint("smscode", __name__, url_prefix="/sms", static_folder="static")

# The methods the two paths serve; every other one (TRACE, PROPFIND, QUERY...) reaches the
# views too (see _accept_every_method) and gets our JSON 405, not werkzeug's HTML one.
_METHODS = ["POST", "OPTIONS"]
# An explicit JSON ``"purpose": null``: not a string, so the service refuses it (field
# purpose), where a missing purpose (None) is the default. See _purpose.
_NULL: Any = object()
# HTTP errors werkzeug raises inside the two views (unknown paths never reach them).
_HTTP_ERROR_CODES = {
    400: "invalid_request",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "invalid_request",
}


@sms_bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    """Read and validate the app's SMSCODE_* settings when the blueprint is registered."""
    init_app(state.app)


def _payload(endpoint: str) -> dict[str, Any]:
    """The request fields, from a JSON object or from form fields.

    A body that is not a JSON object (malformed, nested too deep for the parser, an array)
    is refused with ``invalid_request`` after the service has counted the request against
    the client's per-IP limit, like any other request: unreadable bodies are no free flood.
    """
    if request.method != "POST":
        raise _MethodNotAllowed()
    _refuse_chunked_over_limit()
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # "[" x 1000: the C parser gives up on the nesting
            data = None
        if not isinstance(data, dict):
            _refuse_counted(endpoint, InvalidRequest(key="invalid_request.body"))
        return data
    return {key: values[0] if len(values) == 1 else values for key, values in request.form.lists()}


def _refuse_chunked_over_limit() -> None:
    """413 ``request_too_large`` for a chunked body (no Content-Length) over
    ``MAX_CONTENT_LENGTH``.

    werkzeug refuses a declared length over the limit, but a chunked body it only cuts at
    the limit: JSON then failed to parse (400 instead of the documented 413) and form
    fields were read from the first ``MAX_CONTENT_LENGTH`` bytes as if that were the whole
    body (issue 15). So such a body is read here, at most the limit (werkzeug's bounded
    stream), and one byte more means it was larger. The bytes read are cached: the JSON
    or form parser reads them from there.
    """
    limit = request.max_content_length
    if limit is None or request.content_length is not None:
        return
    if not request.environ.get("wsgi.input_terminated"):
        return  # no length and no terminated stream: werkzeug reads no body at all
    if len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _refuse_counted(endpoint: str, error: InvalidRequest) -> NoReturn:
    """Raise ``error`` once the request has been counted against its client's per-IP
    limit (a client over it hears 429 instead); a store failure goes through as 503."""
    get_service().count_request(endpoint, _client_ip())
    raise error


def _client_ip() -> str:
    return request.remote_addr or ""


def _purpose(data: dict[str, Any]) -> Any:
    """The purpose field: missing is ``None`` (the default), JSON ``null`` is refused."""
    purpose = data.get("purpose")
    return _NULL if purpose is None and "purpose" in data else purpose


@sms_bp.route("/send", methods=_METHODS, provide_automatic_options=False)
def send() -> Response:
    """``POST /sms/send {"phone", "purpose"?}`` → the code is on its way."""
    if request.method == "OPTIONS":
        return _options()
    data = _payload("send")
    # Idempotency-Key (see idempotency.py): a repeat gets the first answer, marked replayed.
    key = request.headers.get(IDEMPOTENCY_HEADER)
    try:
        # Fields go in as the client sent them (any JSON type): the service validates them.
        result = get_service().send(
            data.get("phone"),
            _purpose(data),
            client_ip=_client_ip(),
            idempotency_key=key,
        )
    except SmsCodeError as error:
        # Answered here rather than through the error handler (the same answer): Flask's
        # exception dispatch costs more than the rest of a refusal.
        response = _error_response(error)
        if error.replayed:
            response.status_code = error.replayed_status or error.status
            response.headers[REPLAYED_HEADER] = "true"
        return response
    response = jsonify(result.as_json())
    if result.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


@sms_bp.route("/verify", methods=_METHODS, provide_automatic_options=False)
def verify() -> Response:
    """``POST /sms/verify {"phone", "code", "purpose"?}`` → a verified-phone token."""
    if request.method == "OPTIONS":
        return _options()
    data = _payload("verify")
    try:
        result = get_service().verify(
            data.get("phone"),
            data.get("code"),
            _purpose(data),
            client_ip=_client_ip(),
        )
    except SmsCodeError as error:  # a wrong code is routine: answered without Flask's dispatch
        return _error_response(error)
    return jsonify(result.as_json())


@sms_bp.record
def _accept_every_method(state: BlueprintSetupState) -> None:
    """Let every method reach the two views, which answer all but POST and OPTIONS with
    the JSON 405 of the contract.

    werkzeug refuses a method missing from a rule's list while routing, before any view or
    blueprint handler runs, with an HTML 405; and no list can name every method (TRACE,
    PROPFIND, QUERY, CONNECT, made-up ones). A rule without a list matches them all.
    Registered after the routes, so it runs after they are added to the app.
    """
    endpoints = {
        f"{state.name_prefix}.{state.name}.{view}".lstrip(".") for view in ("send", "verify")
    }
    for rule in state.app.url_map.iter_rules():
        if rule.endpoint in endpoints:
            rule.methods = None


class _MethodNotAllowed(SmsCodeError):
    code = "method_not_allowed"
    status = 405
    default_message = "Use POST."


def _language() -> tuple[str, Catalogue]:
    """The app's catalogue and the language this request's answer is written in."""
    service = current_app.extensions.get(EXTENSION_KEY)
    catalogue = service.messages if service is not None else default_catalogue()
    return request_language(catalogue), catalogue


def _error_response(error: SmsCodeError) -> Response:
    """The refusal as JSON; ``message`` in the request's language, ``error`` never varies."""
    language, catalogue = _language()
    response = jsonify(error.to_dict(language, catalogue))
    response.status_code = error.status
    response.headers["Content-Language"] = language
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, _MethodNotAllowed):
        response.headers["Allow"] = "POST, OPTIONS"
    return response


@sms_bp.errorhandler(SmsCodeError)
def _handle_refusal(error: SmsCodeError) -> Response:
    return _error_response(error)


def _options() -> Response:
    """JSON like every other answer; CORS extensions add their headers in after_request."""
    response = jsonify({"ok": True, "methods": ["POST", "OPTIONS"]})
    response.headers["Allow"] = "POST, OPTIONS"
    return response


@sms_bp.errorhandler(HTTPException)
def _handle_http_error(error: HTTPException) -> Response:
    status = error.code or 400
    if status == 429:
        # Flask-Limiter's RateLimitExceeded (the app's default or blueprint limits) or any
        # other 429: the documented ``throttled`` answer, with the wait of the breached limit.
        retry_after = limiter_retry_after() or _retry_after_of(error)
        return _error_response(Throttled(retry_after=retry_after or 60))
    code = _HTTP_ERROR_CODES.get(status, "http_error")
    language, catalogue = _language()
    key = "invalid_request.media_type" if status == 415 else code
    response = jsonify({"ok": False, "error": code, "message": catalogue.text(key, language)})
    response.status_code = status
    response.headers["Content-Language"] = language
    return response


def _retry_after_of(error: HTTPException) -> int | None:
    """werkzeug's ``TooManyRequests(retry_after=...)`` when given in seconds."""
    value = getattr(error, "retry_after", None)
    return ceil_seconds(value) if isinstance(value, (int, float)) and value > 0 else None


@sms_bp.errorhandler(Exception)
def _handle_unexpected(error: Exception) -> Response:
    # Log the type and stack, answer without either: the client gets no traceback.
    # The message is withheld too: an app's receiver or sender may have put a phone in it.
    logger.error(
        "smscode unexpected error in %s: %s\n%s",
        request.endpoint,
        type(error).__name__,
        stack_only(error),
    )
    try:
        language, catalogue = _language()
        message = catalogue.text("internal_error", language)
    except Exception:  # the catalogue itself failed: answer anyway
        language, message = "en", "An unexpected error occurred."
    response = jsonify({"ok": False, "error": "internal_error", "message": message})
    response.status_code = 500
    response.headers["Content-Language"] = language
    return response


@sms_bp.after_request
def _no_store(response: Response) -> Response:
    if (request.endpoint or "").rsplit(".", 1)[-1] in PUBLIC_ENDPOINTS:
        return public_cache(response)  # the script and the OpenAPI document
    # Answers carry tokens and per-phone state: no browser or proxy may cache them.
    response.headers["Cache-Control"] = "no-store"
    return response


# Before the views: a browser post from an untrusted origin is 403 cross_site_request.
register_origins(sms_bp)
register_assets(sms_bp)  # GET /openapi.json, smscode_script_url()
register_reports(sms_bp)  # POST /reports/<secret>: pushed delivery reports (off by default)
register_replies(sms_bp)  # POST /replies/<secret>: pushed replies, SmsUp (off by default)
