"""Verification codes: generated from ``secrets``, stored only as a keyed hash.

The hash is HMAC-SHA256 keyed with the app's secret over phone, purpose and code, so a
leaked Redis dump reveals nothing usable (a bare SHA of a 6-digit code is reversed in
microseconds) and a code for one phone or purpose never matches another.
"""

from __future__ import annotations

import hmac
import re
import secrets

_ASCII_DIGITS = re.compile(r"[0-9]+")


def generate_code(length: int = 6) -> str:
    """A uniformly random string of ``length`` ASCII digits (leading zeros kept).

    One ``randbelow(10**length)`` is as uniform as ``length`` draws of a digit (each value
    equally likely either way) and a sixth of their cost."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def is_well_formed(code: object, length: int) -> bool:
    """Only ASCII digits of the configured length are a code.

    ``str.isdigit()`` and ``int()`` accept other scripts' digits ("١٢٣٤٥٦"), so a regex
    over ``[0-9]`` decides.
    """
    return isinstance(code, str) and len(code) == length and bool(_ASCII_DIGITS.fullmatch(code))


def code_digest(secret: bytes, phone: str, purpose: str, code: str) -> bytes:
    """HMAC-SHA256 binding the code to its phone and purpose (one-shot ``hmac.digest``:
    in C, without an HMAC object per send and verify)."""
    return hmac.digest(secret, f"{phone}\x1f{purpose}\x1f{code}".encode(), "sha256")


def hash_code(secret: bytes, phone: str, purpose: str, code: str) -> str:
    """Hex HMAC-SHA256 binding the code to its phone and purpose."""
    return code_digest(secret, phone, purpose, code).hex()


def codes_match(stored_hash: str, candidate_hash: str) -> bool:
    """Constant-time comparison of two code hashes."""
    return hmac.compare_digest(stored_hash.encode(), candidate_hash.encode())
