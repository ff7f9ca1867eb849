"""The HTTP layer: parse requests (JSON or form), call the service, answer in JSON.

Every answer, errors included, is a JSON object; refusals carry a stable ``error`` code
(see :mod:`flask_smscode.errors`) and never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException

from .errors import InvalidRequest, SmsCodeError
from .service import get_service, init_app

logger = logging.getLogger("flask_smscode")

sms_bp = Blueprint("smscode", __name__, url_prefix="/sms")

# Accept every method on the two rules so a wrong one gets our JSON 405, not Flask's HTML.
_ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# HTTP errors werkzeug raises inside the two views (unknown paths never reach them).
_HTTP_ERROR_CODES = {400: "invalid_request", 405: "method_not_allowed",
                     413: "request_too_large", 415: "invalid_request"}


@sms_bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    """Read and validate the app's SMSCODE_* settings when the blueprint is registered."""
    init_app(state.app)


def _payload() -> dict[str, Any]:
    """The request fields, from a JSON object or from form fields."""
    if request.method != "POST":
        raise _MethodNotAllowed()
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise InvalidRequest("The body must be a JSON object.")
        return data
    return {key: values[0] if len(values) == 1 else values
            for key, values in request.form.lists()}


@sms_bp.route("/send", methods=_ANY_METHOD, provide_automatic_options=False)
def send() -> Response:
    """``POST /sms/send {"phone", "purpose"?}`` → the code is on its way."""
    if request.method == "OPTIONS":
        return _options()
    data = _payload()
    result = get_service().send(data.get("phone"), data.get("purpose"),
                                client_ip=request.remote_addr or "")
    return jsonify(result.as_json())


@sms_bp.route("/verify", methods=_ANY_METHOD, provide_automatic_options=False)
def verify() -> Response:
    """``POST /sms/verify {"phone", "code", "purpose"?}`` → a verified-phone token."""
    if request.method == "OPTIONS":
        return _options()
    data = _payload()
    result = get_service().verify(data.get("phone"), data.get("code"), data.get("purpose"),
                                  client_ip=request.remote_addr or "")
    return jsonify(result.as_json())


class _MethodNotAllowed(SmsCodeError):
    code = "method_not_allowed"
    status = 405
    default_message = "Use POST."


def _error_response(error: SmsCodeError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
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
    response = jsonify({"ok": False, "error": _HTTP_ERROR_CODES.get(status, "http_error"),
                        "message": error.description or error.name})
    response.status_code = status
    return response


@sms_bp.errorhandler(Exception)
def _handle_unexpected(error: Exception) -> Response:
    # Log the type and stack, answer without either: the client gets no traceback.
    logger.error("smscode unexpected error in %s: %s", request.endpoint, type(error).__name__,
                 exc_info=error)
    response = jsonify({"ok": False, "error": "internal_error",
                        "message": "An unexpected error occurred."})
    response.status_code = 500
    return response


@sms_bp.after_request
def _no_store(response: Response) -> Response:
    # Answers carry tokens and per-phone state: no browser or proxy may cache them.
    response.headers["Cache-Control"] = "no-store"
    return response
