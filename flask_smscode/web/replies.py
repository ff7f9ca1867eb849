"""``POST /sms/replies/<secret>``: the receiver of users' replies Alibaba Cloud pushes
(SmsUp, HTTP batch push mode), added to :data:`sms_bp` by :func:`register_replies`.

Off unless SMSCODE_ALIYUN_REPLY_SECRET is set. The same protections as the report receiver
(:mod:`flask_smscode.web.reports`), since it is the same unsigned push from the same
senders: the secret in the path (constant-time compare; wrong or off is the same 404), the
report receiver's source allowlist (SMSCODE_ALIYUN_REPORT_ALLOWED_IPS, 403) and body bound
(SMSCODE_ALIYUN_REPORT_MAX_BYTES, 413). Answers are Alibaba's ``{"code": 0, "msg": ...}``:
200 for every recorded, duplicate or unknown reply (pushing them again changes nothing),
400 for a malformed body, 503 with a non-zero code when the store failed (Alibaba pushes
again, and recording is idempotent). Parsing is the vendor's
(:mod:`flask_smscode.aliyun.replies`); what a reply means is the core's
(:mod:`flask_smscode.core.replies`).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, jsonify, request

from flask_smscode.errors import StorageUnavailable
from flask_smscode.extension import get_service
from flask_smscode.signals import current_app_object

OK_MESSAGE = "接收成功"  # Alibaba's own example answer; only code 0 (a number) is checked


def register_replies(blueprint: Blueprint) -> None:
    """Add the reply receiver's route to ``blueprint``."""
    blueprint.add_url_rule(
        "/replies/<secret>", "receive_replies", receive_replies, methods=["POST"]
    )


def _answer(status: int, code: int, msg: str) -> Response:
    response = jsonify({"code": code, "msg": msg})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def receive_replies(secret: str) -> Response:
    """Record each pushed reply; see the module docstring."""
    # Imported on a push: most apps never receive one (the blueprint's import time).
    from flask_smscode.events import log_event
    from flask_smscode.senders.replies import MalformedReplies

    service = get_service()
    if not service.replies.settings.secret_matches(secret):
        abort(404)  # the same answer whether the receiver is off or the secret is wrong
    limits = service.reports  # the report receiver's allowlist and body bound
    if not limits.source_allowed(request.remote_addr):
        log_event(logging.WARNING, "reply", outcome="forbidden_source")
        return _answer(403, 1, "source address not allowed")
    length = request.content_length
    if length is not None and length > limits.max_bytes:
        return _answer(413, 1, "body too large")
    body = request.stream.read(limits.max_bytes + 1)
    if len(body) > limits.max_bytes:
        return _answer(413, 1, "body too large")
    from flask_smscode.aliyun.replies import parse_replies  # only when a push arrives

    try:
        replies = parse_replies(body)
    except MalformedReplies as exc:
        log_event(logging.WARNING, "reply", outcome="malformed")
        return _answer(400, 1, str(exc))
    try:
        counts = service.replies.record(replies, current_app_object())
    except StorageUnavailable:
        log_event(logging.WARNING, "reply", outcome="storage_unavailable")
        return _answer(503, 1, "storage unavailable, push again later")
    if len(replies) > 1:
        log_event(logging.INFO, "reply.batch", outcome="received", replies=len(replies), **counts)
    return _answer(200, 0, OK_MESSAGE)
