"""One outcome record per send and verify, logged, counted and signalled in one place.

The service hands :func:`observe` one immutable :class:`Outcome` per request; nothing else
logs, counts or signals a send or verify outcome, so the three never disagree.

Levels follow what an operator acts on: the provider failing is WARNING, attacks being
throttled and users mistyping are INFO. Each line is ``key=value`` text (logfmt: readable in
a terminal, parseable by log shippers) and the same fields are attached as
``record.smscode`` for JSON formatters. Phones are masked before they get here; codes
never do.

Fields may carry text a client chose (a purpose the app does not have), so nothing here
trusts them: a purpose is logged as itself only if an app configured it (else
``unknown``), and every value is cut to :data:`MAX_VALUE_CHARS` and escaped, so no value
can start a forged line or blow up a log line.
"""

from __future__ import annotations

import logging
import re
import traceback
import unicodedata
from typing import Any, NamedTuple

from flask.logging import default_handler, has_level_handler

from flask_smscode.metrics import CONVERSIONS, FAILOVERS, SENDERS, STATS
from flask_smscode.phones import carrier_label, mask_phone
from flask_smscode.signals import (
    code_sent,
    code_verified,
    current_app_object,
    verification_failed,
)

logger = logging.getLogger("flask_smscode")

MAX_VALUE_CHARS = 100  # request ids, OutIds and provider codes are far shorter
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Outcome(NamedTuple):
    """What one send or verify came to: the one value that is logged, counted and signalled.

    A NamedTuple rather than a frozen dataclass: the service derives it step by step
    (``_replace``), and ``dataclasses.replace`` cost 10 µs per step, a third of a verify.

    ``phone`` is the E.164 number: masked in the log line, whole only for signal receivers
    (the app's own code). ``event`` is ``"send"`` or ``"verify"``; ``outcome`` what happened
    (``sent``, ``unconfirmed``, ``test_number``, ``replayed``, ``verified``) or the error
    code of a refusal. ``sender`` / ``sender_outcome`` count which sender carried or failed
    a send; ``guard`` which guard refused it (a budget, a blocked prefix, a source,
    ``challenge``), or ``would_block_<reason>`` for a send the guard in shadow mode let go;
    ``signal`` names the signal to send (``delivery`` or ``reason`` go with it).
    The code itself is never part of it.
    """

    event: str
    outcome: str
    level: int = logging.INFO
    phone: str | None = None
    purpose: str | None = None
    latency_ms: float | None = None
    out_id: str | None = None
    idempotency_key: str | None = None
    replayed: bool | None = None
    guard: str | None = None
    provider_code: str | None = None
    request_id: str | None = None
    sender: str | None = None
    sender_outcome: str | None = None
    exception: str | None = None
    attempts_left: int | None = None
    signal: str | None = None  # "code_sent", "code_verified" or "verification_failed"
    delivery: str | None = None  # code_sent: "sent", "unconfirmed" or "test"
    reason: str | None = None  # verification_failed: the machine error code
    # A refused cross-origin request: its Origin, normalised and bounded (core/origins.py).
    origin: str | None = None
    # A verified code: the sender credited with it in the conversion counts (the app's one
    # sender; None with several, see metrics.CONVERSIONS). Not logged.
    credited_sender: str | None = None


# Which outcomes are a stage of conversion (verified / sent): a code that went out (sent,
# or unconfirmed: it may arrive) and a code typed back. Test numbers and replays are not.
_CONVERSION_STAGES = {
    ("send", "sent"): "sent",
    ("send", "unconfirmed"): "sent",
    ("verify", "verified"): "verified",
}

_SIGNALS = {
    "code_sent": code_sent,
    "code_verified": code_verified,
    "verification_failed": verification_failed,
}


def observe(outcome: Outcome, app: Any = None) -> None:
    """Log, count and signal one outcome (``app``: the signal's sender; ``None`` looks up
    the current app, and outside an app context no signal is sent)."""
    if outcome.sender is not None and outcome.sender_outcome is not None:
        SENDERS.count(outcome.sender, outcome.sender_outcome)
    if outcome.guard is not None:  # the pumping guard or the pre-send hook refused
        STATS.guard_refusal(outcome.guard)
    # A purpose is counted and logged only as a label an app configured (else "unknown").
    purpose = STATS.purpose_label(outcome.purpose) if outcome.purpose else "-"
    count = STATS.send if outcome.event == "send" else STATS.verify
    count(purpose, outcome.outcome)
    stage = _CONVERSION_STAGES.get((outcome.event, outcome.outcome))
    if stage is not None:
        vendor = outcome.sender if outcome.event == "send" else outcome.credited_sender
        CONVERSIONS.count(stage, purpose, carrier_label(outcome.phone), vendor)
    if logger.isEnabledFor(outcome.level):  # else the line would be dropped: not built
        _log_outcome(outcome, purpose)
    if outcome.signal is None:
        return
    signal = _SIGNALS[outcome.signal]
    if not signal.receivers:  # nobody listens (the usual case): skip the app lookup
        return
    extra: dict[str, Any] = {}
    if outcome.delivery is not None:
        extra["delivery"] = outcome.delivery
    if outcome.reason is not None:
        extra["reason"] = outcome.reason
    send_signal(signal, app, phone=outcome.phone, purpose=outcome.purpose, **extra)


def _log_outcome(outcome: Outcome, purpose: str) -> None:
    log_event(
        outcome.level,
        outcome.event,
        phone=mask_phone(outcome.phone) if outcome.phone else "-",
        purpose=purpose,
        outcome=outcome.outcome,
        latency_ms=outcome.latency_ms,
        idempotency_key=outcome.idempotency_key,
        out_id=outcome.out_id,
        replayed=outcome.replayed,
        guard=outcome.guard,
        provider_code=outcome.provider_code,
        request_id=outcome.request_id,
        sender=outcome.sender,
        exception=outcome.exception,
        attempts_left=outcome.attempts_left,
        origin=outcome.origin,
    )


def failover(
    source: str,
    target: str,
    *,
    phone: str,
    purpose: str,
    provider_code: str | None,
    request_id: str | None,
) -> None:
    """One move of a send from sender ``source`` to ``target`` after a definite failure:
    logged (WARNING: the first sender is broken and the backup hides it from users) and
    counted per sender and per (from, to, reason). ``reason`` is the provider code the
    vendor's own table judged definite; the send's outcome is observed later, once.
    """
    SENDERS.count(source, "failover")
    FAILOVERS.count(source, target, provider_code)
    log_event(
        logging.WARNING,
        "send.failover",
        phone=mask_phone(phone),
        purpose=purpose,
        sender=source,
        next=target,
        reason=provider_code or "unknown",
        provider_code=provider_code,
        request_id=request_id,
    )


def send_signal(signal: Any, app: Any = None, **kwargs: Any) -> None:
    """Notify ``signal``'s receivers, with ``app`` (default: the current app) as sender.

    The one policy for a failing receiver: logged (type and stack, never its message, which
    may hold a phone), not raised. The SMS has gone out, the code is used up or the report is
    stored by then, and the client or the provider must hear so.
    """
    if not signal.receivers:
        return
    if app is None:
        app = current_app_object()
        if app is None:  # used outside an app context: nobody to send as
            return
    try:
        signal.send(app, **kwargs)
    except Exception as exc:
        logger.error(
            "smscode signal %s: a receiver raised %s\n%s",
            signal.name,
            type(exc).__name__,
            stack_only(exc),
        )


def log_event(level: int, event: str, **fields: Any) -> None:
    """One ``key=value`` line; a purpose is written only as a label an app configured."""
    if not logger.isEnabledFor(level):
        return  # the line would be dropped anyway, so it is not built
    if "purpose" in fields and fields["purpose"] not in (None, "-"):
        fields["purpose"] = STATS.purpose_label(fields["purpose"])
    clean = {
        _escape(str(key)): _bounded(value)
        for key, value in {"event": event, **fields}.items()
        if value is not None
    }
    text = " ".join(f"{key}={_quote(value)}" for key, value in clean.items())
    logger.log(level, "smscode %s", text, extra={"smscode": clean})


def stack_only(exc: BaseException) -> str:
    """The stack and type of ``exc`` (its causes included) without any exception message.

    For errors raised by code the package does not own (a signal receiver, a custom
    sender): their messages may hold a phone number or a code, which never go to a log.
    """
    parts: list[str] = []
    chain: BaseException | None = exc
    while chain is not None and len(parts) < 5:
        frames = "".join(traceback.format_tb(chain.__traceback__))
        parts.append(
            f"Traceback (most recent call last):\n{frames}{type(chain).__name__} (message withheld)"
        )
        chain = chain.__cause__ or chain.__context__
    return "\n\nwhile handling, from:\n".join(reversed(parts))


def _bounded(value: Any) -> Any:
    """Numbers and booleans as they are; anything else as escaped text of bounded length."""
    if isinstance(value, (bool, int, float)):
        return value
    return _escape(str(value))


# Printable ASCII but the backslash and the double quote: text that needs no escape
# (checked in one C-level scan).
_PLAIN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e ]*")


def _escape(text: str) -> str:
    """Cut to :data:`MAX_VALUE_CHARS` and escape what could end or disguise a line.

    Control and format characters (CR, LF, NEL, U+2028, bidi overrides...) become
    ``\\n``-style or ``\\uXXXX`` escapes, so one event is always one line that reads as
    what it is.
    """
    if len(text) <= MAX_VALUE_CHARS and _PLAIN.fullmatch(text):
        return text  # the common case (masked phones, ids, outcomes): nothing to escape
    cut = len(text) > MAX_VALUE_CHARS
    out = []
    for char in text[:MAX_VALUE_CHARS]:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif unicodedata.category(char)[0] in "CZ" and char != " ":
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out) + ("..." if cut else "")


def _quote(text: Any) -> str:
    """Quote (logfmt) a value that is empty or holds a space, ``=`` or ``"``."""
    text = str(text)
    return f'"{text}"' if (not text or " " in text or "=" in text or '"' in text) else text


def ensure_log_handler() -> bool:
    """Make the package's log lines visible in an app that configured no logging, the way
    Flask wires ``app.logger``; called once per app by ``init_app``. Returns whether it acted.

    Why: without a handler, Python shows only WARNING and above (``logging.lastResort``), so
    an app under gunicorn, which configures its own loggers and not the root, showed none of
    the INFO lines operators read (every send and verify, the console sender's codes). So
    when no handler would take the ``flask_smscode`` logger's records (none of its own, none of
    an ancestor it propagates to, at its effective level: Flask's ``has_level_handler``),
    Flask's ``default_handler`` is attached (the request's ``wsgi.errors``, i.e. gunicorn's
    error log, else stderr) and an unset level becomes INFO. An app that configured logging
    itself (``basicConfig``, ``dictConfig``, a handler on ``flask_smscode`` or the root, even
    one that only takes warnings) is left alone.
    """
    if has_level_handler(logger):
        return False
    logger.addHandler(default_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return True
