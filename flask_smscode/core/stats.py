"""The operators' picture from the store's hourly counters (``flask smscode stats``).

The store keeps one hash of counters per UTC hour for 14 days (layout and cost in
:mod:`flask_smscode.stores.stats`); this module sums a window of hours and derives what an
operator reads: conversion (verified ÷ sends), refusals by reason, guard blocks, and
delivery p50/p95 per carrier and vendor. The CLI only formats what it gets here.

**Windows.** "The last N hours" is the current UTC hour (partial) and the N-1 before it:
the counters are hourly, so a window starts on an hour boundary (``since`` says which).

**Percentiles** are interpolated linearly inside the histogram bucket the rank falls in
(the buckets of :data:`~flask_smscode.stores.stats.BOUNDS`, first from 0 s), as
Prometheus' ``histogram_quantile`` does: an estimate, exact only at bucket bounds. A rank
past the last bound (600 s) reports that bound and ``over`` true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask_smscode.errors import ConfigurationError
from flask_smscode.stores.base import Refusal
from flask_smscode.stores.stats import BOUNDS, HOUR_MS, KEEP_HOURS, SENT, VERIFIED, StatsStore

# The pumping guard's refusals (the others are the client's and the phone's own limits).
GUARD_REFUSALS = frozenset(
    r.value
    for r in (Refusal.GLOBAL, Refusal.PREFIX, Refusal.BLOCKED, Refusal.CONVERSION, Refusal.SOURCE)
)


@dataclass(frozen=True)
class Latency:
    """Delivery latency of one (carrier, vendor): reports counted, p50/p95 in seconds."""

    carrier: str
    vendor: str
    count: int
    p50: float
    p95: float
    over: bool = False  # p95 is past the last bucket (more than BOUNDS[-1] seconds)


@dataclass(frozen=True)
class Window:
    """The sums of ``hours`` hours ending with the current one, starting at ``since``."""

    hours: int
    since: datetime
    sends: int = 0
    verified: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    verify_failures: dict[str, int] = field(default_factory=dict)
    latency: list[Latency] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        """Verified ÷ sends; ``None`` without sends. Above 1 is possible at a window's
        start (a code sent before it, verified inside)."""
        return self.verified / self.sends if self.sends else None

    @property
    def guard_blocks(self) -> int:
        return sum(n for reason, n in self.refusals.items() if reason in GUARD_REFUSALS)

    def as_json(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "sends": self.sends,
            "verified": self.verified,
            "conversion": None if self.conversion is None else round(self.conversion, 4),
            "refusals": dict(sorted(self.refusals.items())),
            "guard_blocks": self.guard_blocks,
            "verify_failures": dict(sorted(self.verify_failures.items())),
            "delivery": [
                {
                    "carrier": item.carrier,
                    "vendor": item.vendor,
                    "count": item.count,
                    "p50_seconds": round(item.p50, 2),
                    "p95_seconds": round(item.p95, 2),
                    "over": item.over,
                }
                for item in self.latency
            ],
        }


def quantile(buckets: Sequence[int], q: float) -> tuple[float, bool]:
    """The ``q`` quantile of a histogram (count per bucket of BOUNDS, then the overflow),
    interpolated in its bucket; ``(BOUNDS[-1], True)`` when it lies past the last bound."""
    total = sum(buckets)
    if total == 0:
        return 0.0, False
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets[: len(BOUNDS)]):
        if n and seen + n >= rank:
            lower = BOUNDS[i - 1] if i else 0.0
            return lower + (BOUNDS[i] - lower) * (rank - seen) / n, False
        seen += n
    return float(BOUNDS[-1]), True


def summarize(hours: int, since: datetime, counts: Iterable[Mapping[str, int]]) -> Window:
    """One window from the hours' counter hashes (fields as in stores/stats.py)."""
    sends = verified = 0
    refusals: dict[str, int] = {}
    failures: dict[str, int] = {}
    histograms: dict[tuple[str, str], list[int]] = {}
    for hour in counts:
        for name, n in hour.items():
            if name == SENT:
                sends += n
            elif name == VERIFIED:
                verified += n
            elif name.startswith("r:"):
                refusals[name[2:]] = refusals.get(name[2:], 0) + n
            elif name.startswith("x:"):
                failures[name[2:]] = failures.get(name[2:], 0) + n
            elif name.startswith("d:"):
                parts = name.split(":")
                if len(parts) != 4 or not parts[3].isdigit() or int(parts[3]) > len(BOUNDS):
                    continue  # a field of another version: skipped, not an error
                buckets = histograms.setdefault((parts[1], parts[2]), [0] * (len(BOUNDS) + 1))
                buckets[int(parts[3])] += n
    latency = []
    for (carrier, vendor), buckets in sorted(histograms.items()):
        p50, _ = quantile(buckets, 0.5)
        p95, over = quantile(buckets, 0.95)
        latency.append(Latency(carrier, vendor, sum(buckets), p50, p95, over))
    return Window(hours, since, sends, verified, refusals, failures, latency)


def operator_stats(store: object, windows: Sequence[int] = (1, 24)) -> list[Window]:
    """One :class:`Window` per entry of ``windows`` (hours, 1 to 336), read in one go."""
    if not isinstance(store, StatsStore):
        raise ConfigurationError("SMSCODE_STORAGE_URI: this store keeps no statistics")
    widest = max(windows)
    if min(windows) < 1 or widest > KEEP_HOURS:
        raise ValueError(f"hours must be 1 to {KEEP_HOURS}")
    current = store.stats_hour()
    counts = store.read_stats([current - i for i in range(widest)])
    out = []
    for n in windows:
        first = current - n + 1
        since = datetime.fromtimestamp(first * HOUR_MS / 1000, tz=timezone.utc)
        out.append(summarize(n, since, (c for h, c in counts.items() if h >= first)))
    return out
