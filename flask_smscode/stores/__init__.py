"""Storage backends, chosen by URI scheme as Flask-Limiter users already write them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..config import STORAGE_SCHEMES
from ..errors import ConfigurationError
from .base import (
    ClientLimits,
    GuardRequest,
    IdempotencyRequest,
    IdempotencyState,
    Keys,
    PhoneStatus,
    PrefixStatus,
    Refusal,
    SendDecision,
    Store,
    StoredAnswer,
    VerifyOutcome,
    VerifyResult,
)
from .memory import MemoryStore

__all__ = [
    "ClientLimits",
    "GuardRequest",
    "IdempotencyRequest",
    "IdempotencyState",
    "Keys",
    "MemoryStore",
    "PhoneStatus",
    "PrefixStatus",
    "Refusal",
    "SendDecision",
    "Store",
    "StoredAnswer",
    "VerifyOutcome",
    "VerifyResult",
    "store_from_uri",
]


def store_from_uri(
    uri: str, *, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
) -> Store:
    """Build the store for ``SMSCODE_STORAGE_URI``."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "memory":
        return MemoryStore(key_prefix=key_prefix)
    if scheme in STORAGE_SCHEMES:
        from .redis import RedisStore  # redis-py is only imported when used

        return RedisStore(uri, key_prefix=key_prefix, timeout=timeout, **options)
    raise ConfigurationError(
        f"SMSCODE_STORAGE_URI: unsupported scheme {scheme!r}; use one of "
        + ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
        + "."
    )
