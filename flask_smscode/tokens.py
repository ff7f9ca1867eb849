"""Verified-phone tokens: signed, short-lived, single-use proof of a successful verify.

A login or signup view receives the token instead of re-checking the code: it is signed
with itsdangerous (already under Flask) so it cannot be forged or altered, carries its
phone and purpose, expires after ``SMSCODE_TOKEN_TTL_SECONDS``, and its id is recorded
in the store when checked so it works once.
"""

from __future__ import annotations

import functools
import hmac
import json
import os
import re
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes

from flask_smscode.errors import InvalidToken

_SALT = "flask-smscode.verified-phone"
_PLAIN = re.compile(r"\+?[0-9]{1,20}")


@functools.lru_cache(maxsize=64)
def _json(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class VerifiedPhone:
    """What a checked token proves: ``phone`` (E.164) was verified for ``purpose``."""

    phone: str
    purpose: str
    token_id: str


class TokenSigner:
    def __init__(self, secret: bytes, max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age = max_age
        # dumps() builds a signer and derives its key on every call, and signs through
        # itsdangerous' lazy SHA-1 wrapper, which sends hmac to its pure-Python path: a
        # third of a verify. The same signature from the derived key, once, in C — used
        # only if it matches itsdangerous' own on a probe (a different default digest or
        # derivation in some release falls back to the signer).
        self._signer = self._serializer.make_signer()
        self._sep = want_bytes(self._signer.sep)
        self._key: bytes | None = self._signer.derive_key()
        probe = b"flask-smscode probe"
        if self._signer.get_signature(probe) != base64_encode(
            hmac.digest(self._key, probe, "sha1")
        ):
            self._key = None

    def issue(self, phone: str, purpose: str) -> str:
        """A token as ``self._serializer.dumps(...)`` makes it, minus the zlib step: dumps
        compresses every payload to keep the result if it is shorter (for these payloads
        one time in 16, by a few bytes), and building zlib's state costs more than the rest
        of the token. :meth:`load` reads both forms."""
        # The JSON text json.dumps would give, without an encoder per token: an E.164 phone
        # needs no escaping (anything else goes through json.dumps), the purpose's JSON is
        # cached per purpose, and the id is 128 random bits in hex (what uuid4().hex gave,
        # minus the version bits, for a third of the cost).
        phone_json = f'"{phone}"' if _PLAIN.fullmatch(phone) else _json(phone)
        payload = base64_encode(
            f'{{"phone":{phone_json},"purpose":{_json(purpose)},"id":"{os.urandom(16).hex()}"}}'.encode()
        )
        if self._key is None:
            return self._signer.sign(payload).decode("utf-8")
        value = payload + self._sep + base64_encode(int_to_bytes(int(time.time())))
        return (value + self._sep + base64_encode(hmac.digest(self._key, value, "sha1"))).decode(
            "utf-8"
        )

    def load(self, token: object) -> VerifiedPhone:
        """Check signature and age (not single use: the store does that)."""
        if not isinstance(token, str) or not token or len(token) > 1024:
            raise InvalidToken()
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise InvalidToken(key="invalid_token.expired") from None
        except BadSignature:
            raise InvalidToken() from None
        try:
            return VerifiedPhone(str(data["phone"]), str(data["purpose"]), str(data["id"]))
        except (TypeError, KeyError):
            raise InvalidToken() from None
