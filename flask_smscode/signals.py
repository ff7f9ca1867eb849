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
# A user's reply (SmsUp, from the message queue or the HTTP push) was recorded, once per reply
# (never for a duplicate). Keyword arguments: ``phone`` (E.164), ``content`` (the reply's
# text, as the user typed it: for the app's own routing, e.g. to support staff; never
# logged), ``unsubscribed`` (True when it was an unsubscribe word and the number is now on
# the suppression list), ``received_at`` (the provider's send_time text, China time),
# ``dest_code`` (the number the user replied to, with its extension code) and ``sign_name``.
reply_received = _signals.signal("reply-received")


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
