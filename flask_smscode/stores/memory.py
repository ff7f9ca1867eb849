"""In-process store for development and tests (``memory://``).

It makes the same atomic decisions as the Redis store under one lock, but it lives in
one process: with several gunicorn workers each worker has its own codes and throttles,
so a code sent through one worker fails on another and limits multiply. Use Redis in
production.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..codes import codes_match
from ..config import Limit
from .base import Keys, PhoneStatus, VerifyOutcome, VerifyResult


class MemoryStore:
    """A dict of ``key -> (value, expires_at)`` with Redis-like expiry semantics."""

    def __init__(self, key_prefix: str = "smscode", clock: Callable[[], float] = time.monotonic,
                 **_options: Any) -> None:
        self.keys = Keys(key_prefix)
        self._clock = clock
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()

    # -- tiny Redis-alike, called with the lock held -------------------------------------
    def _get(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _ttl(self, key: str) -> float:
        """Seconds left; -2 when missing, -1 when the key does not expire (as Redis)."""
        if self._get(key) is None:
            return -2
        expires = self._data[key][1]
        return -1 if expires is None else expires - self._clock()

    def _set(self, key: str, value: Any, ttl: float | None) -> None:
        self._data[key] = (value, None if ttl is None else self._clock() + ttl)

    def _incr(self, key: str, ttl: int) -> int:
        current = self._get(key)
        if current is None:
            self._set(key, 1, ttl)
            return 1
        self._data[key] = (current + 1, self._data[key][1])
        return current + 1

    # -- the Store protocol --------------------------------------------------------------
    def reserve_send(self, phone: str, purpose: str, code_hash: str, send_id: str, *,
                     ttl: int, cooldown: int, limits: Sequence[Limit]) -> int:
        k = self.keys
        with self._lock:
            wait = max(self._ttl(k.cooldown(phone)), 0.0)
            for limit in limits:
                if (self._get(k.sends(phone, limit)) or 0) >= limit.amount:
                    wait = max(wait, self._ttl(k.sends(phone, limit)))
            if wait > 0:
                return max(1, math.ceil(wait))
            for limit in limits:
                self._incr(k.sends(phone, limit), limit.seconds)
            if cooldown > 0:
                self._set(k.cooldown(phone), send_id, cooldown)
            previous = self._get(k.code(phone, purpose))
            self._set(k.code(phone, purpose),
                      (code_hash, send_id, previous[0] if previous else None), ttl)
            return 0

    def cancel_send(self, phone: str, purpose: str, send_id: str, *,
                    limits: Sequence[Limit]) -> None:
        k = self.keys
        with self._lock:
            code = self._get(k.code(phone, purpose))
            if code is not None and code[1] == send_id:
                del self._data[k.code(phone, purpose)]
            if self._get(k.cooldown(phone)) == send_id:
                del self._data[k.cooldown(phone)]
            for limit in limits:
                used = self._get(k.sends(phone, limit))
                if used:
                    self._data[k.sends(phone, limit)] = (used - 1,
                                                         self._data[k.sends(phone, limit)][1])

    def check_code(self, phone: str, purpose: str, code_hash: str, *,
                   max_attempts: int, window: int) -> VerifyResult:
        code_key, fail_key = self.keys.code(phone, purpose), self.keys.failures(phone, purpose)
        with self._lock:
            failures = self._get(fail_key) or 0
            if failures >= max_attempts:
                return VerifyResult(VerifyOutcome.LOCKED, 0, math.ceil(self._ttl(fail_key)))
            stored = self._get(code_key)
            if stored is None:
                return VerifyResult(VerifyOutcome.EXPIRED, max_attempts - failures)
            if codes_match(stored[0], code_hash):
                self._data.pop(code_key, None)
                self._data.pop(fail_key, None)
                return VerifyResult(VerifyOutcome.OK, max_attempts)
            if stored[2] and codes_match(stored[2], code_hash):
                # the code this one replaced: an older SMS, not a guess
                return VerifyResult(VerifyOutcome.EXPIRED, max_attempts - failures)
            failures = self._incr(fail_key, window)
            if failures >= max_attempts:
                self._data.pop(code_key, None)
            return VerifyResult(VerifyOutcome.INVALID, max_attempts - failures,
                                math.ceil(self._ttl(fail_key)))

    def use_token(self, token_id: str, ttl: int) -> bool:
        key = self.keys.token(token_id)
        with self._lock:
            if self._get(key) is not None:
                return False
            self._set(key, 1, ttl)
            return True

    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        k = self.keys
        with self._lock:
            code = self._get(k.code(phone, purpose))
            return PhoneStatus(
                code_ttl=_whole(self._ttl(k.code(phone, purpose))),
                out_id=code[1] if code else None,
                failures=self._get(k.failures(phone, purpose)) or 0,
                failures_ttl=_whole(self._ttl(k.failures(phone, purpose))),
                cooldown=_whole(self._ttl(k.cooldown(phone))),
                sends={limit.text: self._get(k.sends(phone, limit)) or 0 for limit in limits},
            )

    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        k = self.keys
        names = [k.cooldown(phone), *(k.sends(phone, limit) for limit in limits)]
        for purpose in purposes:
            names += [k.code(phone, purpose), k.failures(phone, purpose)]
        with self._lock:
            found = [name for name in names if self._get(name) is not None]
            for name in found:
                del self._data[name]
            return len(found)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._data.clear()


def _whole(ttl: float) -> int:
    return max(0, math.ceil(ttl))
