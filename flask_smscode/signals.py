"""Blinker signals, sent with the Flask app as sender (as flask-login does).

Receivers get keyword arguments: ``phone`` (E.164), ``purpose`` and, for
:data:`code_sent`, ``delivery`` ("sent", "unconfirmed" or "test"); for
:data:`verification_failed`, ``reason`` (the machine error code). The code itself is
never passed.
"""

from __future__ import annotations

from typing import Any

from blinker import Namespace

_signals = Namespace()

code_sent = _signals.signal("code-sent")
code_verified = _signals.signal("code-verified")
verification_failed = _signals.signal("verification-failed")
# A delivery report pushed by Alibaba Cloud was stored for one of our code sends (never for
# duplicates, late or unknown reports). Keyword arguments: ``phone`` (E.164), ``state``
# ("delivered" or "failed"), ``err_code`` (bounded, see metrics.report_err_label), ``out_id``.
delivery_reported = _signals.signal("delivery-reported")


def current_app_object() -> Any:
    """The current Flask app itself (not the proxy), the sender of every signal; ``None``
    outside an app context. Flask types ``current_app`` as the app class, which hides the
    proxy's ``_get_current_object``: this is the one place that reaches for it."""
    from flask import current_app

    try:
        proxy: Any = current_app
        return proxy._get_current_object()
    except RuntimeError:
        return None
