"""Blinker signals, sent with the Flask app as sender (as flask-login does).

Receivers get keyword arguments: ``phone`` (E.164), ``purpose`` and, for
:data:`code_sent`, ``delivery`` ("sent", "unconfirmed" or "test"); for
:data:`verification_failed`, ``reason`` (the machine error code). The code itself is
never passed.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

code_sent = _signals.signal("code-sent")
code_verified = _signals.signal("code-verified")
verification_failed = _signals.signal("verification-failed")
