"""``POST /sms/reports/<secret>``: the receiver of delivery reports Alibaba Cloud pushes
(SmsReport, HTTP batch push mode), registered on :data:`sms_bp`.

Off unless SMSCODE_ALIYUN_REPORT_SECRET is set. Alibaba signs nothing in this push, so the
receiver protects itself: the secret in its path (compared in constant time; a wrong one is
the same 404 as a receiver that is off), an optional source allowlist (403), a bounded body
(413). Answers are Alibaba's format, ``{"code": 0, "msg": ...}``. Alibaba checks only the
HTTP status (200) and that ``code`` is a number, and pushes again after 1, 5 and 10 minutes
when the status is not 200: so unknown, duplicate and late reports are answered 200 (they
are counted and dropped; pushing them again would change nothing), a malformed body 400
and a store that cannot take the reports 503 with a non-zero code — the one case where a
retry helps.
"""

from __future__ import annotations

import logging

from flask import Response, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from flask.sansio.app import App

from .aliyun.reports import MalformedReports, ReportSettings, parse_reports, record_reports
from .blueprint import sms_bp
from .errors import StorageUnavailable
from .events import log_event
from .service import get_service

logger = logging.getLogger("flask_smscode")
EXTENSION_KEY = "smscode.reports"
OK_MESSAGE = "接收成功"  # Alibaba's own example answer; only code 0 (a number) is checked


def report_settings(app: App) -> ReportSettings:
    """The app's validated receiver settings (read once per app)."""
    settings = app.extensions.get(EXTENSION_KEY)
    if not isinstance(settings, ReportSettings):
        settings = app.extensions[EXTENSION_KEY] = ReportSettings.from_config(app.config)
    return settings


@sms_bp.record_once
def _check_settings(state: BlueprintSetupState) -> None:
    """A wrong SMSCODE_ALIYUN_REPORT_* setting fails at start-up, not on Alibaba's push."""
    report_settings(state.app)


def _answer(status: int, code: int, msg: str) -> Response:
    response = jsonify({"code": code, "msg": msg})
    response.status_code = status
    return response


@sms_bp.route("/reports/<secret>", methods=["POST"])
def receive_reports(secret: str) -> Response:
    """Store each pushed report against its send; see the module docstring."""
    settings = report_settings(current_app)
    if not settings.secret_matches(secret):
        abort(404)  # the same answer whether the receiver is off or the secret is wrong
    if not settings.source_allowed(request.remote_addr):
        log_event(logging.WARNING, "report", outcome="forbidden_source")
        return _answer(403, 1, "source address not allowed")
    length = request.content_length
    if length is not None and length > settings.max_bytes:
        return _answer(413, 1, "body too large")
    body = request.stream.read(settings.max_bytes + 1)
    if len(body) > settings.max_bytes:
        return _answer(413, 1, "body too large")
    try:
        reports = parse_reports(body)
    except MalformedReports as exc:
        log_event(logging.WARNING, "report", outcome="malformed")
        return _answer(400, 1, str(exc))
    try:
        counts = record_reports(get_service(), settings, reports, current_app._get_current_object())  # type: ignore[attr-defined]
    except StorageUnavailable:
        log_event(logging.WARNING, "report", outcome="storage_unavailable")
        return _answer(503, 1, "storage unavailable, push again later")
    if len(reports) > 1 or set(counts) - {"delivered", "failed"}:
        log_event(logging.INFO, "report.batch", outcome="received", reports=len(reports), **counts)
    return _answer(200, 0, OK_MESSAGE)
