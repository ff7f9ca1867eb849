"""One structured log line, and one count, per send and verify outcome.

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
from typing import Any

from .metrics import STATS

logger = logging.getLogger("flask_smscode")

MAX_VALUE_CHARS = 100  # request ids, OutIds and provider codes are far shorter
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def log_event(level: int, event: str, **fields: Any) -> None:
    if "purpose" in fields and fields["purpose"] not in (None, "-"):
        fields["purpose"] = STATS.purpose_label(fields["purpose"])
    if event == "send":
        STATS.send(str(fields.get("purpose")), str(fields.get("outcome")))
    elif event == "verify":
        STATS.verify(str(fields.get("purpose")), str(fields.get("outcome")))
    if not logger.isEnabledFor(level):
        return  # counted; the line would be dropped anyway, so it is not built
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
