"""``POST /sms/reports/<secret>``: the receiver of delivery reports Alibaba Cloud pushes
(SmsReport, HTTP batch push mode), added to :data:`sms_bp` by :func:`register_reports`.

Off unless SMSCODE_ALIYUN_REPORT_SECRET is set. Alibaba signs nothing in this push, so the
receiver protects itself: the secret in its path (compared in constant time; a wrong one is
the same 404 as a receiver that is off), an optional source allowlist (403), a bounded body
(413). Answers are Alibaba's format, ``{"code": 0, "msg": ...}``. Alibaba checks only the
HTTP status (200) and that ``code`` is a number, and pushes again after 1, 5 and 10 minutes
when the status is not 200: so unknown, duplicate and late reports are answered 200 (they
are counted and dropped; pushing them again would change nothing), a malformed body 400
and a store that cannot take the reports 503 with a non-zero code — the one case where a
retry helps. Parsing is the vendor's (:mod:`flask_smscode.aliyun.reports`); what a report
means is the core's (:mod:`flask_smscode.core.deliveries`).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, jsonify, request

from flask_smscode.errors import StorageUnavailable
from flask_smscode.events import log_event
from flask_smscode.extension import get_service
from flask_smscode.senders.reports import MalformedReports
from flask_smscode.signals import current_app_object

logger = logging.getLogger("flask_smscode")
OK_MESSAGE = "接收成功"  # Alibaba's own example answer; only code 0 (a number) is checked


def register_reports(blueprint: Blueprint) -> None:
    """Add the receiver's route to ``blueprint`` (its settings are read with the rest of
    the app's, when the blueprint is registered)."""
    blueprint.add_url_rule(
        "/reports/<secret>", "receive_reports", receive_reports, methods=["POST"]
    )


def _answer(status: int, code: int, msg: str) -> Response:
    response = jsonify({"code": code, "msg": msg})
    response.status_code = status
    return response


def receive_reports(secret: str) -> Response:
    """Store each pushed report against its send; see the module docstring."""
    service = get_service()
    settings = service.reports
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
    from flask_smscode.aliyun.reports import parse_reports  # only when a push arrives

    try:
        reports = parse_reports(body)
    except MalformedReports as exc:
        log_event(logging.WARNING, "report", outcome="malformed")
        return _answer(400, 1, str(exc))
    try:
        counts = service.deliveries.record(reports, current_app_object())
    except StorageUnavailable:
        log_event(logging.WARNING, "report", outcome="storage_unavailable")
        return _answer(503, 1, "storage unavailable, push again later")
    if len(reports) > 1 or set(counts) - {"delivered", "failed"}:
        log_event(logging.INFO, "report.batch", outcome="received", reports=len(reports), **counts)
    return _answer(200, 0, OK_MESSAGE)
