"""The OutId of a code send: which send a delivery report belongs to, whoever carried it.

Every code send carries an OutId minted here, 16 base-36 characters:
``tag(6) + random(2) + time(8)``. ``time`` is the send's creation time in centiseconds (fixed
width, so later sends sort later as text); ``tag`` is an HMAC of the phone and the other 10
characters under a key derived from the app secret. A report whose OutId carries a valid tag
for its phone is one of our code sends — even after the code was verified and its hash field
deleted — and the tag cannot be forged by whoever learns the report receiver's URL.

It lives in the core, not with a vendor: the core mints it before any sender runs, every
sender of a failover list passes the same one on, and the delivery bookkeeping
(:mod:`flask_smscode.core.deliveries`) reads it back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
OUT_ID_LENGTH = 16
_TAG, _RANDOM, _TIME = 6, 2, 8
_OUT_ID = re.compile(r"[0-9a-z]{16}")


def _b36(number: int, width: int) -> str:
    out = ""
    for _ in range(width):
        number, digit = divmod(number, 36)
        out = _B36[digit] + out
    return out


class OutIds:
    """Mint and check the OutIds of code sends (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"flask-smscode out id", hashlib.sha256).digest()

    def _tag(self, phone: str, body: str) -> str:
        digest = hmac.new(self._key, f"{phone}|{body}".encode(), hashlib.sha256).digest()
        return _b36(int.from_bytes(digest[:8], "big") % 36**_TAG, _TAG)

    def new(self, phone: str, now: float | None = None) -> str:
        """A fresh OutId for a code send to ``phone`` (E.164)."""
        centis = int((time.time() if now is None else now) * 100)
        body = _b36(secrets.randbelow(36**_RANDOM), _RANDOM) + _b36(centis, _TIME)
        return self._tag(phone, body) + body

    def report_id(self, phone: str, out_id: object) -> str | None:
        """The untagged part of ``out_id`` if it is ours for ``phone``, else ``None``."""
        if not isinstance(out_id, str) or not _OUT_ID.fullmatch(out_id):
            return None
        body = out_id[_TAG:]
        return body if hmac.compare_digest(self._tag(phone, body), out_id[:_TAG]) else None

    @staticmethod
    def sent_at(report_id: str) -> float:
        """When the send of ``report_id`` (a checked, untagged OutId) was minted, in POSIX
        seconds: a vendor that reports only the receive time still gets a delivery time."""
        return int(report_id[_RANDOM:], 36) / 100

    def out_id(self, phone: str, report_id: str) -> str:
        """The full OutId again, from a stored ``report_id``."""
        return self._tag(phone, report_id) + report_id
