"""Counts of every send, verify and provider call, and an optional Prometheus collector.

Counting needs no dependency: :data:`STATS` is updated in-process on every outcome. With
the ``prometheus`` extra installed, :func:`register_metrics` exposes it::

    from flask_smscode.metrics import register_metrics
    register_metrics()            # the default prometheus_client REGISTRY

Counts are per process: under gunicorn each worker is its own scrape target (or use
one worker per container), as with any in-process collector.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

# Seconds; an Alibaba Cloud SendSms call usually takes 50-300 ms, a timeout several seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Every label value is from a fixed set: a label kept per distinct client string is a memory
# leak an attacker can fill (each label set lives for the life of the process).
UNKNOWN = "unknown"  # a purpose no app configured: the client chose it, so it is not kept
OTHER = "other"  # an outcome or provider code that is not a short identifier
# Outcomes are error codes and provider codes ("isv.BUSINESS_LIMIT_CONTROL"), never client text;
# the pattern also bounds a misbehaving provider or custom sender.
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")
# Why the pumping guard refused a send: the global budget, a prefix's budget, a prefix
# blocked for low conversion (already, or by this request), the pre-send hook.
GUARD_REASONS = ("global", "prefix", "blocked", "conversion", "challenge")


def outcome_label(value: object) -> str:
    """``value`` if it is a short identifier, else :data:`OTHER`."""
    return value if isinstance(value, str) and _IDENTIFIER.fullmatch(value) else OTHER


class Stats:
    """Thread-safe counters keyed by label tuples, plus latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sends: dict[tuple[str, str], int] = defaultdict(int)
        self.verifies: dict[tuple[str, str], int] = defaultdict(int)
        self.provider_calls: dict[tuple[str, str], int] = defaultdict(int)
        self.guard_refusals: dict[tuple[str, ...], int] = defaultdict(int)
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = defaultdict(float)
        # The purposes some app configured (SMSCODE_PURPOSES): the only purpose labels.
        self._purposes: frozenset[str] = frozenset()

    def allow_purposes(self, purposes: Iterable[str]) -> None:
        """Accept ``purposes`` as label values (each app's service calls this at start-up)."""
        with self._lock:
            self._purposes = self._purposes.union(
                p for p in purposes if isinstance(p, str) and 0 < len(p) <= 64
            )

    def purpose_label(self, purpose: object) -> str:
        """``purpose`` if an app configured it, else :data:`UNKNOWN`."""
        return purpose if isinstance(purpose, str) and purpose in self._purposes else UNKNOWN

    def send(self, purpose: str, outcome: str) -> None:
        key = (self.purpose_label(purpose), outcome_label(outcome))
        with self._lock:
            self.sends[key] += 1

    def verify(self, purpose: str, outcome: str) -> None:
        key = (self.purpose_label(purpose), outcome_label(outcome))
        with self._lock:
            self.verifies[key] += 1

    def guard_refusal(self, reason: str) -> None:
        label = reason if reason in GUARD_REASONS else OTHER
        with self._lock:
            self.guard_refusals[(label,)] += 1

    def provider_call(self, action: str, outcome: str, seconds: float) -> None:
        action, outcome = outcome_label(action), outcome_label(outcome)
        with self._lock:
            self.provider_calls[(action, outcome)] += 1
            buckets = self._latency.setdefault(action, [0] * (len(LATENCY_BUCKETS) + 1))
            buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum[action] += seconds

    def latency(self) -> dict[str, tuple[list[tuple[str, int]], float]]:
        """Per action: cumulative (le, count) buckets ending with +Inf, and the sum."""
        with self._lock:
            out = {}
            for action, counts in self._latency.items():
                running, buckets = 0, []
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                    running += count
                    buckets.append(("+Inf" if bound == float("inf") else str(bound), running))
                out[action] = (buckets, self._latency_sum[action])
            return out

    def snapshot(self) -> dict[str, dict[Any, int]]:
        with self._lock:
            return {
                "sends": dict(self.sends),
                "verifies": dict(self.verifies),
                "provider_calls": dict(self.provider_calls),
                "guard_refusals": dict(self.guard_refusals),
            }

    def reset(self) -> None:
        """Zero the counts (the allowed purposes stay: they belong to the running apps)."""
        with self._lock:
            self.sends.clear()
            self.verifies.clear()
            self.provider_calls.clear()
            self.guard_refusals.clear()
            self._latency.clear()
            self._latency_sum.clear()


STATS = Stats()


class SmsCodeCollector:
    """A prometheus_client collector reading :data:`STATS` at scrape time."""

    def __init__(self, stats: Stats = STATS) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        snap = self.stats.snapshot()
        families = (
            (
                "smscode_sends",
                "Code sends by purpose and outcome.",
                "sends",
                ["purpose", "outcome"],
            ),
            (
                "smscode_verifies",
                "Code verifications by purpose and outcome.",
                "verifies",
                ["purpose", "outcome"],
            ),
            (
                "smscode_provider_requests",
                "Alibaba Cloud SMS API calls by action and result "
                "code (OK, the provider's error code, unconfirmed, request_failed).",
                "provider_calls",
                ["action", "code"],
            ),
            (
                "smscode_guard_refusals",
                "Sends refused by the SMS-pumping guard, by reason "
                "(global, prefix, blocked, conversion, challenge).",
                "guard_refusals",
                ["reason"],
            ),
        )
        for name, doc, key, labels in families:
            family = CounterMetricFamily(name, doc, labels=labels)
            for label_values, count in sorted(snap[key].items()):
                family.add_metric(list(label_values), count)
            yield family
        latency = HistogramMetricFamily(
            "smscode_provider_latency_seconds",
            "Latency of Alibaba Cloud SMS API calls.",
            labels=["action"],
        )
        for action, (buckets, total) in sorted(self.stats.latency().items()):
            latency.add_metric([action], buckets, total)
        yield latency
        yield from report_families()
        yield from sender_families()


_registered: dict[int, SmsCodeCollector] = {}


def register_metrics(registry: Any = None) -> SmsCodeCollector:
    """Register the collector once per registry (default: prometheus_client's REGISTRY)."""
    try:
        from prometheus_client import REGISTRY
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "Prometheus metrics need the extra: pip install 'flask-smscode[prometheus]'"
        ) from None
    registry = registry if registry is not None else REGISTRY
    collector = _registered.get(id(registry))
    if collector is None:
        collector = SmsCodeCollector()
        registry.register(collector)
        _registered[id(registry)] = collector
    return collector


# -- delivery reports pushed by Alibaba Cloud (aliyun/reports.py) ------------------------
# The outcome of each report: stored as delivered or failed, a duplicate of one already
# stored, late (an older send than the one stored), unknown (not a code send of ours).
REPORT_OUTCOMES = ("delivered", "failed", "duplicate", "late", "unknown")
# err_code is provider text (and, if the receiver's secret leaked, anyone's): only short
# codes of this shape become labels or stored values, everything else is "other".
_REPORT_ERR = re.compile(r"[A-Za-z0-9_.:-]{1,40}")


def report_err_label(value: object) -> str:
    """``value`` if it is a short provider code (``DELIVERED``, ``MK:0001``), else "other"."""
    return value if isinstance(value, str) and _REPORT_ERR.fullmatch(value) else OTHER


class LabelledCounts:
    """A thread-safe table of counts keyed by label pairs, per process like STATS; the
    subclasses decide (from fixed sets) which label values a count may carry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def _add(self, key: tuple[str, str]) -> None:
        with self._lock:
            self.counts[key] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def family(self, name: str, documentation: str, labels: list[str]) -> Any:
        """The table as one Prometheus counter family."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(name, documentation, labels=labels)
        for key, count in sorted(self.snapshot().items()):
            family.add_metric(list(key), count)
        return family


class ReportStats(LabelledCounts):
    """Delivery reports by outcome and err_code."""

    def count(self, outcome: str, err_code: object) -> None:
        self._add((outcome if outcome in REPORT_OUTCOMES else OTHER, report_err_label(err_code)))


REPORTS = ReportStats()


def report_families(stats: ReportStats = REPORTS) -> Iterator[Any]:
    """The Prometheus family of :data:`REPORTS` (yielded by :class:`SmsCodeCollector`)."""
    yield stats.family(
        "smscode_delivery_reports",
        "Delivery reports pushed by Alibaba Cloud, by outcome "
        "(delivered, failed, duplicate, late, unknown) and err_code.",
        ["outcome", "err_code"],
    )


# -- failover: which sender carried each code (senders/failover.py) ----------------------
# Per sender of SMSCODE_SENDER, what its attempts came to: it carried the code ("sent"), its
# outcome is unknown ("unconfirmed"), it definitely failed and the next sender was tried
# ("failover"), or it ended the send with a refusal or failure ("failed").
SENDER_OUTCOMES = ("sent", "unconfirmed", "failover", "failed")


class SenderStats(LabelledCounts):
    """Attempts by sender and outcome; sender labels only from the configured names."""

    def __init__(self) -> None:
        super().__init__()
        self._names: frozenset[str] = frozenset()

    def allow(self, names: Iterable[str]) -> None:
        """Accept ``names`` (an app's SMSCODE_SENDER, at start-up) as label values."""
        with self._lock:
            self._names = self._names.union(n for n in names if 0 < len(n) <= 64)

    def count(self, sender: object, outcome: str) -> None:
        label = sender if isinstance(sender, str) and sender in self._names else OTHER
        self._add((label, outcome if outcome in SENDER_OUTCOMES else OTHER))


SENDERS = SenderStats()


def sender_families(stats: SenderStats = SENDERS) -> Iterator[Any]:
    """The Prometheus family of :data:`SENDERS` (yielded by :class:`SmsCodeCollector`)."""
    yield stats.family(
        "smscode_sender_attempts",
        "Code sends per sender of SMSCODE_SENDER, by outcome "
        "(sent, unconfirmed, failover, failed).",
        ["sender", "outcome"],
    )
