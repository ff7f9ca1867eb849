"""The field encoding shared by the Redis scripts (``lua/common.lua``) and the memory store.

Every field value starts with its expiry (ms since the epoch, base 36):

- ``c:<purpose>`` = ``expires|hash|send_id`` (the live code),
- ``p:<purpose>`` = ``expires|replaced_hash`` (the code it replaced),
- ``f:<purpose>`` = ``ends|failures``,
- ``u:<purpose>`` = ``expires|hash|send_id|verify_id`` (a consumed code, kept until its
  expiry when the app waits for replicas: restore.lua puts it back by the verify's id when
  that verify's reply was lost),
- ``cd`` = ``expires|send_id[:6]`` (the cooldown),
- ``n`` and the client fields ``s``/``v`` = ``latest|count|ends|count|ends...`` (one fixed
  window per limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from flask_smscode.config import Limit
from flask_smscode.stores.base import IdempotencyState, PhoneStatus, PrefixStatus, StoredAnswer

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


def phone_status(
    fields: dict[str, str], now_ms: int, purpose: str, limits: Sequence[Limit]
) -> PhoneStatus:
    """Read the encoded fields of one phone hash (shared with the memory store)."""

    def left(value: str | None) -> int:
        return max(0, math.ceil((expiry(value) - now_ms) / 1000)) if value else 0

    code = fields.get(f"c:{purpose}")
    failures = fields.get(f"f:{purpose}")
    counters = (fields.get("n") or "").split("|")[1:]
    sends: dict[str, int] = {}
    for i, limit in enumerate(limits):
        count, ends = ([*counters[2 * i : 2 * i + 2], "0", "0"])[:2]
        sends[limit.text] = int(count) if n36(ends) > now_ms else 0
    return PhoneStatus(
        code_ttl=left(code),
        out_id=code.split("|")[2] if code else None,
        failures=int(failures.split("|")[1]) if failures else 0,
        failures_ttl=left(failures),
        cooldown=left(fields.get("cd")),
        sends=sends,
    )


# -- the pumping guard and idempotency records (mirrors lua/common.lua) ------------------


def conv_read(value: str | None, window: int, now: int) -> list[int]:
    """``[k, sends, verifies, previous sends, previous verifies]`` of a prefix's ``cv``."""
    k = now // window
    if value:
        f = value.split("|")
        stored = n36(f[1])
        if stored == k:
            return [k, int(f[2]), int(f[3]), int(f[4]), int(f[5])]
        if stored == k - 1:
            return [k, 0, 0, int(f[2]), int(f[3])]
    return [k, 0, 0, 0, 0]


def conv_value(c: Sequence[int], window: int) -> str:
    return f"{t36((c[0] + 2) * window)}|{t36(c[0])}|{c[1]}|{c[2]}|{c[3]}|{c[4]}"


def conv_estimate(c: Sequence[int], window: int, now: int) -> tuple[float, float]:
    """Sends and verifies over the sliding window ending ``now``."""
    weight = 1 - (now - c[0] * window) / window
    return c[1] + c[3] * weight, c[2] + c[4] * weight


def conv_add(value: str | None, window: int, now: int, sends: int, verifies: int) -> str:
    c = conv_read(value, window, now)
    if sends < 0 and c[1] == 0:
        c[3] = max(0, c[3] + sends)  # the send was counted in the previous window
    else:
        c[1] = max(0, c[1] + sends)
    c[2] += verifies
    return conv_value(c, window)


def answer_args(answer: StoredAnswer) -> list[Any]:
    """A stored answer as script arguments: status, code, key variant, n1, n2."""
    return [
        answer.status,
        answer.code,
        answer.key,
        "" if answer.n1 is None else answer.n1,
        "" if answer.n2 is None else answer.n2,
    ]


def idempotency_state(reply: Sequence[Any]) -> IdempotencyState | None:
    """What a script's ``idem_look`` reply says (``None`` for an unknown key)."""
    kind = str(reply[0])
    if kind == "replay":
        status, code, key, n1, n2 = (str(v) for v in reply[1:6])
        return IdempotencyState(
            "replay",
            StoredAnswer(int(status), code, key, int(n1) if n1 else None, int(n2) if n2 else None),
        )
    if kind in ("reused", "pending"):
        return IdempotencyState(kind, wait_ms=max(0, int(reply[1])))
    return None


def prefix_status(
    prefix: str, fields: dict[str, str], now_ms: int, limits: Sequence[Limit], window_ms: int
) -> PrefixStatus:
    """Read the encoded fields of one number prefix's hash (shared with the memory store)."""
    sends = verifies = 0.0
    if window_ms > 0 and "cv" in fields:
        sends, verifies = conv_estimate(
            conv_read(fields["cv"], window_ms, now_ms), window_ms, now_ms
        )
    counted = window_counts(fields.get("n"), limits, now_ms)
    blocked = fields.get("b")
    return PrefixStatus(
        prefix=prefix,
        sends=round(sends, 1),
        verifies=round(verifies, 1),
        blocked_for=max(0, math.ceil((expiry(blocked) - now_ms) / 1000)) if blocked else 0,
        counted=counted,
    )


def window_counts(value: str | None, limits: Sequence[Limit], now_ms: int) -> dict[str, int]:
    """Counts of a windows field (``n``) per limit text."""
    counters = (value or "").split("|")[1:]
    out: dict[str, int] = {}
    for i, limit in enumerate(limits):
        count, ends = ([*counters[2 * i : 2 * i + 2], "0", "0"])[:2]
        out[limit.text] = int(count) if n36(ends) > now_ms else 0
    return out


# -- the guard's sources (mirrors source_count / source_add in lua/common.lua) -----------
SOURCES_KEPT = 16  # sources tracked per prefix; past that every source is "many" already


def source_count(fields: dict[str, str], source: str) -> tuple[int, int, int]:
    """This source's unverified sends to the prefix, its field's expiry, and how many
    distinct sources have unverified sends there (``fields``: live fields only)."""
    mine = ends = distinct = 0
    for name, value in fields.items():
        if name.startswith("u:"):
            expires, _, count = value.partition("|")
            n = int(count or 0)
            distinct += n > 0
            if name == "u:" + source:
                mine, ends = n, n36(expires)
    return mine, ends, distinct


def source_add(fields: dict[str, str], source: str, delta: int, window: int, now: int) -> None:
    """Add ``delta`` to a source's count (a send +1; a verify or a cancelled send -1)."""
    if not source:
        return
    name = "u:" + source
    value = fields.get(name)
    if value is None:
        if delta > 0 and sum(f.startswith("u:") for f in fields) < SOURCES_KEPT:
            fields[name] = f"{t36(now + window)}|{delta}"
        return
    expires, _, count = value.partition("|")
    n = int(count or 0) + delta
    if n <= 0:
        del fields[name]
    elif delta > 0:
        fields[name] = f"{t36(now + window)}|{n}"
    else:
        fields[name] = f"{expires}|{n}"
