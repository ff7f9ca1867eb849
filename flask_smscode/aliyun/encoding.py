"""Percent-encoding for the RPC signature: the same bytes as ``urllib``, in C.

The RPC signature (aliyun-python-sdk-core's ``rpc_signature_composer``) percent-encodes
every parameter with ``urllib.parse.urlencode`` and then the sorted query again with
``pathname2url``. ``urllib`` encodes byte by byte in Python whenever a string holds one
character to escape, and a 1000-number SendSms (``PhoneNumbers`` with 999 commas) is ~13 kB:
that encoding was most of a notification's CPU. :func:`percent_encode` is what the package's
own signer (:func:`flask_smscode.aliyun.transport.signed_query`) uses; the other functions
mirror urllib's for the comparison tests (tests/aliyun/test_encoding.py, over generated
text). Nothing here is installed into the SDK: the SDK's own signer keeps urllib.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

_ALWAYS_SAFE = frozenset(string.ascii_letters + string.digits + "_.-~")  # as urllib's


@functools.lru_cache(maxsize=8)
def _unsafe(safe: str) -> re.Pattern[bytes]:
    """Bytes to escape: anything but the unreserved ones and ``safe`` (ASCII, as urllib)."""
    keep = sorted(_ALWAYS_SAFE | {c for c in safe if c.isascii()})
    return re.compile(b"[^" + b"".join(re.escape(c).encode() for c in keep) + b"]")


def _escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def quote(text: str | bytes, safe: str = "/") -> str:
    """``urllib.parse.quote(text, safe)`` (UTF-8, strict)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return _unsafe(safe).sub(_escape, data).decode("ascii")


def quote_plus(text: str | bytes, safe: str = "") -> str:
    """``urllib.parse.quote_plus(text, safe)``: spaces become ``+``."""
    has_space = (" " in text) if isinstance(text, str) else (b" " in text)
    if has_space:
        return quote(text, safe + " ").replace(" ", "+")
    return quote(text, safe)


def urlencode(query: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> str:
    """``urllib.parse.urlencode(query)`` for the pairs the SDK passes (``doseq`` off)."""
    pairs = query.items() if isinstance(query, Mapping) else query
    return "&".join(
        quote_plus(k if isinstance(k, (str, bytes)) else str(k))
        + "="
        + quote_plus(v if isinstance(v, (str, bytes)) else str(v))
        for k, v in pairs
    )


def pathname2url(path: str) -> str:
    """``urllib.request.pathname2url(path)`` on POSIX: ``quote(path)``."""
    return quote(path)


_RFC3986_UNSAFE = _unsafe("")


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of UTF-8 text (only ``A-Za-z0-9-_.~`` kept, a space is ``%20``):
    what the SDK's ``urlencode`` + ``+``/``*``/``%7E`` fix-up yields for one value."""
    return _RFC3986_UNSAFE.sub(_escape, text.encode("utf-8")).decode("ascii")
