"""The HTTP layer: parse requests (JSON or form), call the service, answer in JSON.

Every answer, errors included, is a JSON object; refusals carry a stable ``error`` code
(see :mod:`flask_smscode.errors`) and never a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from flask_smscode.config import ceil_seconds
from flask_smscode.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from flask_smscode.core.idempotency import REPLAYED_HEADER
from flask_smscode.core.limiter_adapter import limiter_retry_after
from flask_smscode.errors import InvalidRequest, SmsCodeError, Throttled
from flask_smscode.extension import EXTENSION_KEY, get_service, init_app
from flask_smscode.messages import Catalogue, default_catalogue, request_language
from flask_smscode.web.assets import register_assets
from flask_smscode.web.origins import add_cors_headers, refuse_cross_origin
from flask_smscode.web.replies import register_replies
from flask_smscode.web.reports import register_reports

logger = logging.getLogger("flask_smscode")

# static/ holds the front-end helper: /sms/static/smscode.js, served by assets.py's own
# route (it sets the cache headers itself: the blueprint has no after-request hook).
sms_bp = Blueprint("smscode", __name__, url_prefix="/sms")

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
# Every answer of the two endpoints carries tokens or per-phone state: no browser or proxy
# may cache it. Set where each answer is built rather than in an after-request hook: a
# blueprint hook costs every request Flask's hook dispatch (a tenth of a wrong-code verify's
# Python, profiled), and the views build all their answers here anyway.
_NO_STORE = ("Cache-Control", "no-store")
_JSON = "application/json"
# Flask's default provider's output (sorted keys, compact, ASCII) without building an encoder
# per answer; the bodies are the package's own plain dicts, so an app's custom JSON provider
# has nothing to add to them.
_encode = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode


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
    refuse_cross_origin("send")  # before anything is read: see web/origins.py
    if request.method == "OPTIONS":
        return _options("send")
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
        if error.replayed:
            return _error_response(
                error, "send", error.replayed_status, ((REPLAYED_HEADER, "true"),)
            )
        return _error_response(error, "send")
    extra = ((REPLAYED_HEADER, "true"),) if result.replayed else ()
    return _json_response(_encode(result.as_json()), 200, [_NO_STORE, *extra], "send")


@sms_bp.route("/verify", methods=_METHODS, provide_automatic_options=False)
def verify() -> Response:
    """``POST /sms/verify {"phone", "code", "purpose"?}`` → a verified-phone token."""
    refuse_cross_origin("verify")  # before anything is read: see web/origins.py
    if request.method == "OPTIONS":
        return _options("verify")
    data = _payload("verify")
    try:
        result = get_service().verify(
            data.get("phone"),
            data.get("code"),
            _purpose(data),
            client_ip=_client_ip(),
        )
    except SmsCodeError as error:  # a wrong code is routine: answered without Flask's dispatch
        return _error_response(error, "verify")
    return _json_response(_encode(result.as_json()), 200, [_NO_STORE], "verify")


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


def _json_response(
    body: str | bytes, status: int, headers: list[tuple[str, str]], view: str | None
) -> Response:
    """Every answer of the blueprint's JSON views: the body, no-store, and the CORS headers
    of a trusted origin when ``view`` is one of the protected two."""
    response = current_app.response_class(body, status=status, headers=headers, mimetype=_JSON)
    if view is not None:
        add_cors_headers(response, view)
    return response


def _error_response(
    error: SmsCodeError,
    view: str | None = None,
    status: int | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> Response:
    """The refusal as JSON; ``message`` in the request's language, ``error`` never varies."""
    language, catalogue = _language()
    headers = [_NO_STORE, ("Content-Language", language), *extra]
    if error.retry_after is not None:
        headers.append(("Retry-After", str(error.retry_after)))
    if isinstance(error, _MethodNotAllowed):
        headers.append(("Allow", "POST, OPTIONS"))
    return _json_response(
        _error_body(error, language, catalogue), status or error.status, headers, view
    )


def _error_body(error: SmsCodeError, language: str, catalogue: Catalogue) -> str:
    """The error's JSON text, rendered once per (error, language, attempts left, wait...):
    a wrong code, a throttled client or an expired code is the same few answers over and
    over, and rendering one (catalogue lookup, formatting, encoding) was a tenth of a
    wrong-code verify. Only the public body is kept, never a phone or a code (errors carry
    neither: see errors.py)."""
    try:
        key = (
            catalogue,
            language,
            type(error),
            error.key,
            error.literal_message,
            error.retry_after,
            tuple(sorted(error.params.items())),
            tuple(sorted(error.extra.items())),
        )
        body = _ERROR_BODIES.get(key)
    except TypeError:  # an unhashable value in params or extra: rendered as it is
        return _encode(error.to_dict(language, catalogue))
    if body is None:
        if len(_ERROR_BODIES) >= _ERROR_BODIES_MAX:
            _ERROR_BODIES.clear()  # bounded: retry_after values and languages are few
        body = _ERROR_BODIES[key] = _encode(error.to_dict(language, catalogue))
    return body


_ERROR_BODIES: dict[tuple[Any, ...], str] = {}
_ERROR_BODIES_MAX = 1024


@sms_bp.errorhandler(SmsCodeError)
def _handle_refusal(error: SmsCodeError) -> Response:
    return _error_response(error, _view())


def _view() -> str | None:
    """The protected view (send, verify) this request reached, for an error handler."""
    view = (request.endpoint or "").rsplit(".", 1)[-1]
    return view if view in ("send", "verify") else None


_OPTIONS_BODY = _encode({"ok": True, "methods": ["POST", "OPTIONS"]})


def _options(view: str) -> Response:
    """JSON like every other answer, with the preflight's CORS headers for a trusted
    origin (web/origins.py)."""
    return _json_response(_OPTIONS_BODY, 200, [_NO_STORE, ("Allow", "POST, OPTIONS")], view)


@sms_bp.errorhandler(HTTPException)
def _handle_http_error(error: HTTPException) -> Response:
    status = error.code or 400
    if status == 429:
        # Flask-Limiter's RateLimitExceeded (the app's default or blueprint limits) or any
        # other 429: the documented ``throttled`` answer, with the wait of the breached limit.
        retry_after = limiter_retry_after() or _retry_after_of(error)
        return _error_response(Throttled(retry_after=retry_after or 60), _view())
    code = _HTTP_ERROR_CODES.get(status, "http_error")
    language, catalogue = _language()
    key = "invalid_request.media_type" if status == 415 else code
    body = _encode({"ok": False, "error": code, "message": catalogue.text(key, language)})
    return _json_response(body, status, [_NO_STORE, ("Content-Language", language)], _view())


def _retry_after_of(error: HTTPException) -> int | None:
    """werkzeug's ``TooManyRequests(retry_after=...)`` when given in seconds."""
    value = getattr(error, "retry_after", None)
    return ceil_seconds(value) if isinstance(value, (int, float)) and value > 0 else None


@sms_bp.errorhandler(Exception)
def _handle_unexpected(error: Exception) -> Response:
    # Log the type and stack, answer without either: the client gets no traceback.
    # The message is withheld too: an app's receiver or sender may have put a phone in it.
    from flask_smscode.events import stack_only

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
    body = _encode({"ok": False, "error": "internal_error", "message": message})
    return _json_response(body, 500, [_NO_STORE, ("Content-Language", language)], _view())


register_assets(sms_bp)  # GET /static/<file>, GET /openapi.json, smscode_script_url()
register_reports(sms_bp)  # POST /reports/<secret>: pushed delivery reports (off by default)
register_replies(sms_bp)  # POST /replies/<secret>: pushed replies, SmsUp (off by default)
