"""The field encoding shared by the Redis scripts (``lua/common.lua``) and the memory store.

Every field value starts with its expiry (ms since the epoch, base 36):

- ``c:<purpose>`` = ``expires|hash|send_id`` (the live code),
- ``p:<purpose>`` = ``expires|replaced_hash`` (the code it replaced),
- ``f:<purpose>`` = ``ends|failures``,
- ``cd`` = ``expires|send_id[:6]`` (the cooldown),
- ``n`` and the client fields ``s``/``v`` = ``latest|count|ends|count|ends...`` (one fixed
  window per limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..config import Limit
from .base import PhoneStatus

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def t36(ms: int) -> str:
    """A time in ms as base 36, as the scripts write it (8 characters, not 13)."""
    out = ""
    while True:
        ms, digit = divmod(ms, 36)
        out = _B36[digit] + out
        if not ms:
            return out


def n36(text: str) -> int:
    return int(text, 36) if text else 0


def expiry(value: str) -> int:
    """The expiry (ms) a field value starts with."""
    return n36(value.split("|", 1)[0])


def limit_args(limits: Sequence[Limit]) -> list[int]:
    """Script arguments for limits: their count, then (amount, window_ms) pairs."""
    args = [len(limits)]
    for limit in limits:
        args += [limit.amount, limit.seconds * 1000]
    return args


def seconds_from_ms(ms: Any) -> int:
    """Whole seconds for Retry-After, at least 1."""
    return max(1, math.ceil(int(ms) / 1000))


def phone_status(fields: dict[str, str], now_ms: int, purpose: str,
                 limits: Sequence[Limit]) -> PhoneStatus:
    """Read the encoded fields of one phone hash (shared with the memory store)."""

    def left(value: str | None) -> int:
        return max(0, math.ceil((expiry(value) - now_ms) / 1000)) if value else 0

    code = fields.get(f"c:{purpose}")
    failures = fields.get(f"f:{purpose}")
    counters = (fields.get("n") or "").split("|")[1:]
    sends: dict[str, int] = {}
    for i, limit in enumerate(limits):
        count, ends = ([*counters[2 * i:2 * i + 2], "0", "0"])[:2]
        sends[limit.text] = int(count) if n36(ends) > now_ms else 0
    return PhoneStatus(
        code_ttl=left(code),
        out_id=code.split("|")[2] if code else None,
        failures=int(failures.split("|")[1]) if failures else 0,
        failures_ttl=left(failures),
        cooldown=left(fields.get("cd")),
        sends=sends,
    )
