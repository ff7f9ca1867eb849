"""Operator statistics kept by the store: hourly counters for ``flask smscode stats``.

Why in the store: an app without Prometheus (or with many processes, whose in-process
counters each see a part) still gets one picture, read from the place every process
writes to anyway.

Layout: one hash per UTC hour (hour number = epoch ms // 3 600 000),
``<prefix>:stats:<hour>``, expiring 14 days after its last write (``EXPIRE`` on every
write: a TTL of at most 14 days). Fields, each an integer counter:

- ``sent`` — sends the store accepted (the code was stored; the SMS is sent next);
- ``verified`` — codes verified;
- ``r:<refusal>`` — sends refused, by :class:`~flask_smscode.stores.base.Refusal` value
  (client, phone, global, prefix, blocked, conversion, source): a bounded set;
- ``x:<outcome>`` — verifications that failed, by
  :class:`~flask_smscode.stores.base.VerifyOutcome` value (invalid, expired, locked,
  client);
- ``d:<carrier>:<vendor>:<i>`` — delivery latency from pushed reports: ``i`` is the index
  of the first bound in :data:`BOUNDS` the latency is under (``len(BOUNDS)`` past the
  last), a fixed-bucket histogram per (carrier, vendor); carriers are
  :func:`flask_smscode.phones.carrier_label`'s five labels, vendors the report channel's
  name (configured, not typed by a client).

Cost: 13 fields plus 11 per (carrier, vendor) pair a busy hour; measured, one vendor and
five carriers (68 fields) take 1.8 KB (listpack), two vendors 3.6 KB: 0.6 to 1.2 MB for the
336 hours kept. On a single
Redis or Sentinel the send and verify counters are written by the decision script itself
(no extra round trip, see ``lua/common.lua`` ``stats_bump``); on Cluster the hour's hash
is its own slot and costs one more round trip per send and verify. Delivery latency is
written by a separate call when a report is recorded (the report path is not a user's
request).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

from flask_smscode.stores.base import SendDecision, VerifyOutcome, VerifyResult

HOUR_MS = 3_600_000
KEEP_HOURS = 14 * 24
TTL_SECONDS = KEEP_HOURS * 3600
# Upper bounds (seconds) of the latency buckets: those of smscode_delivery_seconds.
BOUNDS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
SENT = "sent"
VERIFIED = "verified"
_LABEL = re.compile(r"[^a-z0-9_-]")


def stats_key(prefix: str, hour: int) -> str:
    return f"{prefix}:stats:{hour}"


def hour_of(ms: float) -> int:
    return int(ms // HOUR_MS)


def send_field(decision: SendDecision) -> str | None:
    """The counter one send decision bumps; ``None`` for an idempotent replay (counted
    when it was first decided)."""
    if decision.idempotency is not None:
        return None
    if decision.refused_by is not None:
        return f"r:{decision.refused_by.value}"
    return SENT


def verify_field(result: VerifyResult) -> str:
    if result.outcome is VerifyOutcome.OK:
        return VERIFIED
    return f"x:{result.outcome.value}"


def label(value: object) -> str:
    """A field-safe label (``:`` separates a field's parts): lower case, at most 32 chars."""
    return _LABEL.sub("_", str(value or "unknown").lower())[:32] or "unknown"


def delivery_field(carrier: str, vendor: object, seconds: float) -> str:
    index = next((i for i, bound in enumerate(BOUNDS) if seconds <= bound), len(BOUNDS))
    return f"d:{label(carrier)}:{label(vendor)}:{index}"


@runtime_checkable
class StatsStore(Protocol):
    """What a store offers ``core/stats.py``: the hour on its clock, latency writes (the
    send and verify counters are written by the decisions themselves), and reads."""

    def stats_hour(self) -> int: ...

    def count_delivery(self, carrier: str, vendor: object, seconds: float) -> None: ...

    def read_stats(self, hours: Sequence[int]) -> dict[int, dict[str, int]]: ...


class HourlyCounters:
    """The memory store's hours: the same fields and expiry as Redis, behind a lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hours: dict[int, dict[str, int]] = {}
        self._expires: dict[int, float] = {}

    def hour(self) -> int:
        return hour_of(self._clock() * 1000)

    def bump(self, field: str | None) -> None:
        if field is None:
            return
        now = self._clock()
        hour = hour_of(now * 1000)
        with self._lock:
            counts = self._hours.setdefault(hour, {})
            counts[field] = counts.get(field, 0) + 1
            self._expires[hour] = now + TTL_SECONDS
            for old in [h for h, ends in self._expires.items() if ends <= now]:
                self._hours.pop(old, None)
                self._expires.pop(old, None)

    def read(self, hours: Sequence[int]) -> dict[int, dict[str, int]]:
        now = self._clock()
        with self._lock:
            return {
                h: dict(self._hours[h])
                for h in hours
                if h in self._hours and self._expires.get(h, 0) > now
            }

    def ttl(self, hour: int) -> float:
        """Seconds left before ``hour`` expires (tests check the 14-day bound)."""
        with self._lock:
            return self._expires.get(hour, 0) - self._clock()


class _Counting(Protocol):
    stats: HourlyCounters


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=_Counting)


def counted(
    field_of: Callable[[R], str | None],
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Bump the counter of a memory store decision's result (Redis does it in the script)."""

    def wrap(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        def counting(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            result = method(self, *args, **kwargs)
            self.stats.bump(field_of(result))
            return result

        counting.__doc__ = method.__doc__
        counting.__name__ = method.__name__
        return counting

    return wrap
