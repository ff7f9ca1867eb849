"""``POST /sms/reports/<secret>`` and ``POST /sms/reports/<channel>/<secret>``: the receivers
of delivery reports the providers push, added to :data:`sms_bp` by :func:`register_reports`.

Vendor-blind: each vendor describes its push as a
:class:`~flask_smscode.senders.reports.ReportChannel` (parser, answer format, settings
prefix) declared in the ``flask_smscode.reports`` entry-point group, and one route serves
them all by name (``/reports/tencent/<secret>``). Alibaba Cloud's SmsReport push keeps its
historical URL ``/reports/<secret>`` (channel ``aliyun``), with its answers unchanged.

Each receiver is off unless its ``<prefix>_SECRET`` is set (``SMSCODE_ALIYUN_REPORT_SECRET``,
``SMSCODE_TENCENT_REPORT_SECRET``). Providers sign nothing in these pushes, so the receiver
protects itself: the secret in its path (compared in constant time; a wrong one, an unknown
channel and a receiver that is off are the same 404), an optional source allowlist (403), a
bounded body (413). Answers are the vendor's format (``answer(ok, reason)``). Providers push
again when the answer is not HTTP 200, so unknown, duplicate and late reports are answered
200 (they are counted and dropped; pushing them again would change nothing), a malformed body
400 and a store that cannot take the reports 503 — the one case where a retry helps. Parsing
is the vendor's; what a report means is the core's (:mod:`flask_smscode.core.deliveries`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, jsonify, request

from flask_smscode.errors import StorageUnavailable
from flask_smscode.extension import get_service
from flask_smscode.signals import current_app_object

if TYPE_CHECKING:  # imported on a push: most apps never receive one (import time)
    from flask_smscode.config import ReportSettings
    from flask_smscode.senders.reports import ReportChannel

logger = logging.getLogger("flask_smscode")
LEGACY_CHANNEL = "aliyun"  # the channel of POST /reports/<secret>, from before channels


def register_reports(blueprint: Blueprint) -> None:
    """Add the receivers' routes to ``blueprint`` (their settings are read with the rest of
    the app's, when the blueprint is registered; channels are looked up on a push)."""
    blueprint.add_url_rule(
        "/reports/<secret>", "receive_reports", receive_reports, methods=["POST"]
    )
    blueprint.add_url_rule(
        "/reports/<channel>/<secret>",
        "receive_channel_reports",
        receive_channel_reports,
        methods=["POST"],
    )


def receive_reports(secret: str) -> Response:
    """Alibaba Cloud's historical receiver (channel ``aliyun``)."""
    return receive_channel_reports(LEGACY_CHANNEL, secret)


def _answer(channel: ReportChannel, status: int, reason: str = "") -> Response:
    response = jsonify(channel.answer(status == 200, reason))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def receive_channel_reports(channel: str, secret: str) -> Response:
    """Store each pushed report against its send; see the module docstring."""
    from flask_smscode.events import log_event
    from flask_smscode.senders.reports import MalformedReports, report_channels

    service = get_service()
    settings: ReportSettings | None = service.report_channels.get(channel)
    described = report_channels().get(channel)
    if settings is None or described is None or not settings.secret_matches(secret):
        abort(404)  # the same answer whether the receiver is off or the secret is wrong
    if not settings.source_allowed(request.remote_addr):
        log_event(logging.WARNING, "report", outcome="forbidden_source")
        return _answer(described, 403, "source address not allowed")
    length = request.content_length
    if length is not None and length > settings.max_bytes:
        return _answer(described, 413, "body too large")
    body = request.stream.read(settings.max_bytes + 1)
    if len(body) > settings.max_bytes:
        return _answer(described, 413, "body too large")
    try:
        reports = described.parse(body)
    except MalformedReports as exc:
        log_event(logging.WARNING, "report", outcome="malformed")
        return _answer(described, 400, str(exc))
    try:
        counts = service.deliveries.record(reports, current_app_object())
    except StorageUnavailable:
        log_event(logging.WARNING, "report", outcome="storage_unavailable")
        return _answer(described, 503, "storage unavailable, push again later")
    if len(reports) > 1 or set(counts) - {"delivered", "failed"}:
        log_event(logging.INFO, "report.batch", outcome="received", reports=len(reports), **counts)
    return _answer(described, 200)
