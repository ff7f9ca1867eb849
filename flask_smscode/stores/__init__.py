"""Storage backends, chosen by URI scheme as Flask-Limiter users already write them
(:mod:`flask_smscode.stores.registry`)."""

from __future__ import annotations

from flask_smscode.stores.base import (
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
from flask_smscode.stores.memory import MemoryStore
from flask_smscode.stores.registry import register_store, store_from_uri, store_schemes

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
    "register_store",
    "store_from_uri",
    "store_schemes",
]
