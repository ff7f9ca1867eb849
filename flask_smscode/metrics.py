"""Counts of every send, verify and provider call, and an optional Prometheus collector.

Counting needs no dependency: :data:`STATS` is updated in-process on every outcome. With
the ``prometheus`` extra installed, :func:`register_metrics` exposes it::

    from flask_smscode.metrics import register_metrics
    register_metrics()            # the default prometheus_client REGISTRY

Counts are kept per process. Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty
directory) before the workers start: every count is then also written to prometheus_client's
per-process files, and :func:`metrics_view` serves the totals of all workers
(``MultiProcessCollector``); :func:`on_starting` and :func:`child_exit` are the gunicorn hooks
(see "Multiprocess mode" below and the README's operations section).
"""

from __future__ import annotations

import bisect
import os
import re
import struct
import threading
import time
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
_REFUSING = ("global", "prefix", "blocked", "conversion", "source")
# Shadow mode (SMSCODE_GUARD_MODE = "shadow"): what the guard would have refused, sent.
GUARD_REASONS: tuple[str, ...] = (
    *_REFUSING,
    "challenge",
    *(f"would_block_{r}" for r in _REFUSING),
)


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
        yield from reply_families()
        yield from operator_families()


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
    """Delivery reports by outcome and err_code.

    An err_code is a label only if a vendor's table lists it (:meth:`allow`, at import of
    that vendor's code table); any other is ``other``. A shape check alone was not enough:
    one push of 3,000 reports with distinct well-formed codes made 3,000 series that stayed
    for the life of the process (issue 15). The series are now bounded by the vendors'
    tables times :data:`REPORT_OUTCOMES`; the report's own err_code is still stored and
    logged (bounded) for the phone's delivery status.
    """

    def __init__(self) -> None:
        super().__init__()
        self._codes: frozenset[str] = frozenset()

    def allow(self, codes: Iterable[str]) -> None:
        """Accept ``codes`` (a vendor's table of report codes) as err_code label values."""
        with self._lock:
            self._codes = self._codes.union(c for c in codes if report_err_label(c) == c)

    def err_label(self, err_code: object) -> str:
        """``err_code`` if a vendor's table lists it, else :data:`OTHER`."""
        return err_code if isinstance(err_code, str) and err_code in self._codes else OTHER

    def count(self, outcome: str, err_code: object) -> None:
        self._add((outcome if outcome in REPORT_OUTCOMES else OTHER, self.err_label(err_code)))


REPORTS = ReportStats()


def report_families(stats: ReportStats = REPORTS) -> Iterator[Any]:
    """The Prometheus family of :data:`REPORTS` (yielded by :class:`SmsCodeCollector`)."""
    yield stats.family(
        "smscode_delivery_reports",
        "Delivery reports pushed by Alibaba Cloud, by outcome "
        "(delivered, failed, duplicate, late, unknown) and err_code.",
        ["outcome", "err_code"],
    )


# -- replies and the message queue (core/replies.py, aliyun/queue.py) --------------------
# A reply's outcome: recorded as a message or as an unsubscribe, a duplicate of one already
# recorded, late (older than the phone's last reply), unknown (no usable phone). A queue
# message's outcome per queue kind (report, reply): recorded and deleted, malformed (counted
# and deleted), kept (not recorded: the store failed or the consumer stopped; it comes back).
REPLY_OUTCOMES = ("received", "unsubscribed", "duplicate", "late", "unknown")
QUEUE_KINDS = ("report", "reply")
QUEUE_OUTCOMES = ("recorded", "malformed", "kept", "receive_failed", "delete_failed")


class ReplyStats(LabelledCounts):
    """Replies by outcome, and queue messages by queue kind and outcome; both label sets
    are fixed here (nothing a user typed becomes a label)."""

    def count(self, outcome: str) -> None:
        self._add(("reply", outcome if outcome in REPLY_OUTCOMES else OTHER))

    def queue(self, kind: str, outcome: str, amount: int = 1) -> None:
        key = (
            f"queue_{kind if kind in QUEUE_KINDS else OTHER}",
            outcome if outcome in QUEUE_OUTCOMES else OTHER,
        )
        with self._lock:
            self.counts[key] += amount


REPLIES = ReplyStats()


def reply_families(stats: ReplyStats = REPLIES) -> Iterator[Any]:
    """The Prometheus families of :data:`REPLIES`."""
    from prometheus_client.core import CounterMetricFamily

    replies = CounterMetricFamily(
        "smscode_replies",
        "Replies (SmsUp) by outcome (received, unsubscribed, duplicate, late, unknown).",
        labels=["outcome"],
    )
    queue = CounterMetricFamily(
        "smscode_queue_messages",
        "Message-queue messages by queue (report, reply) and outcome "
        "(recorded, malformed, kept, receive_failed, delete_failed).",
        labels=["queue", "outcome"],
    )
    for (kind, outcome), count in sorted(stats.snapshot().items()):
        if kind == "reply":
            replies.add_metric([outcome], count)
        else:
            queue.add_metric([kind.removeprefix("queue_"), outcome], count)
    yield replies
    yield queue


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
    yield FAILOVERS.family()


# -- moves from one sender to the next (senders/chain.py, events.failover) ----------------
# Why a send moved: the definite failure's provider code as the vendor's table reported it
# ("isp.SYSTEM_ERROR", "SDK.HttpError", Tencent's "InternalError"...). Codes come from the
# provider, not the client, but a misbehaving gateway could invent many: the first
# MAX_FAILOVER_REASONS distinct short codes are kept per process, any later one is "other".
MAX_FAILOVER_REASONS = 32


class FailoverStats:
    """Moves by (from sender, to sender, reason): sender labels only from the configured
    names (:data:`SENDERS`' allowed set), reasons bounded by :data:`MAX_FAILOVER_REASONS`."""

    def __init__(self, senders: SenderStats) -> None:
        self._senders = senders
        self._lock = threading.Lock()
        self._reasons: set[str] = set()
        self.counts: dict[tuple[str, str, str], int] = defaultdict(int)

    def _reason(self, reason: object) -> str:
        label = outcome_label(reason) if reason else UNKNOWN
        if label in self._reasons or label in (OTHER, UNKNOWN):
            return label
        if len(self._reasons) >= MAX_FAILOVER_REASONS:
            return OTHER
        self._reasons.add(label)
        return label

    def count(self, source: object, target: object, reason: object) -> None:
        names = self._senders._names
        with self._lock:
            key = (
                source if isinstance(source, str) and source in names else OTHER,
                target if isinstance(target, str) and target in names else OTHER,
                self._reason(reason),
            )
            self.counts[key] += 1

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self._reasons.clear()

    def family(self) -> Any:
        """``smscode_sender_failovers_total{from_sender, to_sender, reason}``."""
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "smscode_sender_failovers",
            "Sends that moved from one sender to the next after a definite failure, by "
            "sender moved from, sender moved to and reason (the provider code).",
            labels=["from_sender", "to_sender", "reason"],
        )
        for key, count in sorted(self.snapshot().items()):
            family.add_metric(list(key), count)
        return family


FAILOVERS = FailoverStats(SENDERS)


# -- the operators' picture: delivery latency, conversion, the guard's budget ------------
# Delivery seconds (the provider's receive time minus its send time, from pushed reports):
# an SMS code arrives in seconds when all is well, minutes when a carrier queues it.
DELIVERY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DELIVERY_OUTCOMES = ("delivered", "failed")
# The carrier of a number's block (phones.carrier_label): the four mainland networks, else
# "other" (numbers elsewhere, unknown blocks). A fixed set, so a fixed number of series.
CARRIERS = ("china_mobile", "china_unicom", "china_telecom", "china_broadnet", OTHER)
# Conversion: codes that went out ("sent": sent or unconfirmed) and codes typed back
# ("verified"); verified / sent per purpose, carrier and vendor is the first number to
# drop in an outage (codes stop arriving) or a pumping attack (codes nobody reads).
CONVERSION_STAGES = ("sent", "verified")


def _vendor_label(vendor: object) -> str:
    """A configured sender name (SMSCODE_SENDER, see :data:`SENDERS`), else "other"."""
    return vendor if isinstance(vendor, str) and vendor in SENDERS._names else OTHER


class DeliveryStats:
    """``smscode_delivery_seconds`` by (vendor, carrier, outcome): per process like STATS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.buckets: dict[tuple[str, str, str], list[int]] = {}
        self.sums: dict[tuple[str, str, str], float] = defaultdict(float)

    def observe(self, vendor: object, carrier: str, outcome: str, seconds: float) -> None:
        """One report stored as delivered or failed, ``seconds`` after its send."""
        key = (
            _vendor_label(vendor),
            carrier if carrier in CARRIERS else OTHER,
            outcome if outcome in DELIVERY_OUTCOMES else OTHER,
        )
        seconds = max(0.0, seconds)  # a provider clock a little off must not go negative
        with self._lock:
            counts = self.buckets.setdefault(key, [0] * (len(DELIVERY_BUCKETS) + 1))
            counts[bisect.bisect_left(DELIVERY_BUCKETS, seconds)] += 1
            self.sums[key] += seconds
        if _EXPORTER is not None:
            _EXPORTER.histogram("smscode_delivery_seconds").labels(*key).observe(seconds)

    def reset(self) -> None:
        with self._lock:
            self.buckets.clear()
            self.sums.clear()

    def family(self) -> Any:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "smscode_delivery_seconds",
            _DOCS["smscode_delivery_seconds"],
            labels=list(_LABELS["smscode_delivery_seconds"]),
        )
        with self._lock:
            items = sorted(
                (key, list(counts), self.sums[key]) for key, counts in self.buckets.items()
            )
        for key, counts, total in items:
            running, cumulative = 0, []
            for bound, count in zip((*DELIVERY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else str(bound), running))
            family.add_metric(list(key), cumulative, total)
        return family


DELIVERY = DeliveryStats()


class ConversionStats:
    """``smscode_conversion_total`` by (stage, purpose, carrier, vendor); labels from fixed
    sets only (configured purposes and sender names, :data:`CARRIERS`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str, str, str], int] = defaultdict(int)

    def count(self, stage: str, purpose: object, carrier: str, vendor: object) -> None:
        key = (
            stage if stage in CONVERSION_STAGES else OTHER,
            STATS.purpose_label(purpose),
            carrier if carrier in CARRIERS else OTHER,
            _vendor_label(vendor),
        )
        with self._lock:
            self.counts[key] += 1
        if _EXPORTER is not None:
            _EXPORTER.counter("smscode_conversion").labels(*key).inc()

    def snapshot(self) -> dict[tuple[str, str, str, str], int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def family(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "smscode_conversion",
            _DOCS["smscode_conversion"],
            labels=list(_LABELS["smscode_conversion"]),
        )
        for key, count in sorted(self.snapshot().items()):
            family.add_metric(list(key), count)
        return family


CONVERSIONS = ConversionStats()


class GuardLimits:
    """The pumping guard's global budgets (SMSCODE_GLOBAL_SEND_LIMITS) as a gauge, so an
    alert can compare the sends of a window with the budget before the guard refuses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limits: dict[str, int] = {}

    def set(self, limits: Iterable[tuple[int, int]]) -> None:
        """``(seconds, amount)`` pairs of one app's global budget (its service calls this)."""
        for seconds, amount in limits:
            window = str(int(seconds))
            with self._lock:
                self.limits[window] = max(amount, self.limits.get(window, 0))
            if _EXPORTER is not None:
                _EXPORTER.gauge("smscode_guard_global_limit").labels(window).set(amount)

    def family(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "smscode_guard_global_limit",
            _DOCS["smscode_guard_global_limit"],
            labels=["window_seconds"],
        )
        with self._lock:
            for window, amount in sorted(self.limits.items()):
                family.add_metric([window], amount)
        return family


GUARD_LIMITS = GuardLimits()


def operator_families() -> Iterator[Any]:
    """The families of :data:`DELIVERY`, :data:`CONVERSIONS` and :data:`GUARD_LIMITS`."""
    yield DELIVERY.family()
    yield CONVERSIONS.family()
    yield GUARD_LIMITS.family()


# -- multiprocess mode: totals across gunicorn workers -----------------------------------
# The counts above live in one process; a scrape of /metrics behind gunicorn reaches one
# worker and showed that worker's numbers only. With PROMETHEUS_MULTIPROC_DIR set (before
# the workers start), every count is also written to prometheus_client's per-process files
# in that directory, and /metrics (metrics_view) serves MultiProcessCollector's sums over
# all workers, the dead ones included (counters; child_exit drops dead workers' gauges).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DOCS = {
    "smscode_sends": "Code sends by purpose and outcome.",
    "smscode_verifies": "Code verifications by purpose and outcome.",
    "smscode_provider_requests": "SMS API calls by action and result code.",
    "smscode_guard_refusals": "Sends refused by the SMS-pumping guard, by reason.",
    "smscode_provider_latency_seconds": "Latency of SMS API calls.",
    "smscode_delivery_reports": "Delivery reports pushed by the provider, by outcome and err_code.",
    "smscode_replies": "Replies (SmsUp) by outcome.",
    "smscode_queue_messages": "Message-queue messages by queue and outcome.",
    "smscode_sender_attempts": "Code sends per sender of SMSCODE_SENDER, by outcome.",
    "smscode_sender_failovers": "Sends that moved from one sender to the next, by reason.",
    "smscode_delivery_seconds": "Seconds from the provider's send to the handset's receipt, "
    "from pushed delivery reports, by vendor, carrier and outcome (delivered, failed).",
    "smscode_conversion": "Codes sent (stage=sent: sent or unconfirmed) and typed back "
    "(stage=verified), by purpose, carrier and vendor (the configured sender name).",
    "smscode_guard_global_limit": "The pumping guard's global send budget per window "
    "(SMSCODE_GLOBAL_SEND_LIMITS), by window in seconds.",
}
_LABELS: dict[str, tuple[str, ...]] = {
    "smscode_sends": ("purpose", "outcome"),
    "smscode_verifies": ("purpose", "outcome"),
    "smscode_provider_requests": ("action", "code"),
    "smscode_guard_refusals": ("reason",),
    "smscode_provider_latency_seconds": ("action",),
    "smscode_delivery_reports": ("outcome", "err_code"),
    "smscode_replies": ("outcome",),
    "smscode_queue_messages": ("queue", "outcome"),
    "smscode_sender_attempts": ("sender", "outcome"),
    "smscode_sender_failovers": ("from_sender", "to_sender", "reason"),
    "smscode_delivery_seconds": ("vendor", "carrier", "outcome"),
    "smscode_conversion": ("stage", "purpose", "carrier", "vendor"),
    "smscode_guard_global_limit": ("window_seconds",),
}
_BUCKETS = {
    "smscode_provider_latency_seconds": LATENCY_BUCKETS,
    "smscode_delivery_seconds": DELIVERY_BUCKETS,
}


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when it is on."""
    return os.environ.get(MULTIPROC_ENV) or None


class _Exporter:
    """prometheus_client's own metric objects, which in multiprocess mode write every
    change to this process's files; created on first use, registered nowhere (the
    MultiProcessCollector reads the files)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}

    def _get(self, name: str, build: Any) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self._metrics.get(name)
                if metric is None:
                    metric = self._metrics[name] = build()
        return metric

    def counter(self, name: str) -> Any:
        from prometheus_client import Counter

        return self._get(
            name, lambda: Counter(name, _DOCS[name], list(_LABELS[name]), registry=None)
        )

    def histogram(self, name: str) -> Any:
        from prometheus_client import Histogram

        return self._get(
            name,
            lambda: Histogram(
                name, _DOCS[name], list(_LABELS[name]), registry=None, buckets=_BUCKETS[name]
            ),
        )

    def gauge(self, name: str) -> Any:
        from prometheus_client import Gauge

        # "livemax": the budget the live workers run with (a dead worker's file is
        # dropped by child_exit); every worker of one app sets the same value.
        return self._get(
            name,
            lambda: Gauge(
                name,
                _DOCS[name],
                list(_LABELS[name]),
                registry=None,
                multiprocess_mode="livemax",
            ),
        )


class _MirroredCounts(defaultdict[Any, Any]):
    """A count table that also hands every increase to ``sink(key, delta)``.

    Why a dict and not a call in each counting method: the tables above are counted in many
    places (``self.sends[key] += 1``...), and swapping the table once, when multiprocess
    mode is on, mirrors all of them, and any count added later, with no edit there.
    """

    def __init__(self, default: Any, sink: Any) -> None:
        super().__init__(default)
        self._sink = sink

    def __setitem__(self, key: Any, value: Any) -> None:
        delta = value - self.get(key, 0)
        super().__setitem__(key, value)
        if delta:
            self._sink(key, delta)


def _counter_sink(exporter: _Exporter, name: str) -> Any:
    return lambda key, delta: exporter.counter(name).labels(*key).inc(delta)


def _reply_sink(exporter: _Exporter) -> Any:
    def sink(key: tuple[str, str], delta: int) -> None:
        kind, outcome = key
        if kind == "reply":
            exporter.counter("smscode_replies").labels(outcome).inc(delta)
        else:
            queue = exporter.counter("smscode_queue_messages")
            queue.labels(kind.removeprefix("queue_"), outcome).inc(delta)

    return sink


def _latency_sink(exporter: _Exporter) -> Any:
    # Stats.provider_call adds each call's seconds to _latency_sum[action]: the increase
    # is that call's latency, observed once into the histogram.
    return lambda action, seconds: (
        exporter.histogram("smscode_provider_latency_seconds").labels(action).observe(seconds)
    )


_EXPORTER: _Exporter | None = None


def enable_multiprocess() -> bool:
    """Write every count to prometheus_client's multiprocess files from now on; done at
    import when PROMETHEUS_MULTIPROC_DIR is set (and prometheus_client installed).
    Returns whether the mode is on.

    Each count table of this module is swapped for a mirrored one below: a table added to
    the module later must be added here (and its family to ``_DOCS`` / ``_LABELS``), or it
    is missing from the multiprocess totals (tests/test_metrics_multiprocess.py scrapes
    the families it knows).
    """
    global _EXPORTER
    if _EXPORTER is not None:
        return True
    if multiprocess_dir() is None:
        return False
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False  # counted in process; /metrics says why it is off
    exporter = _Exporter()

    def mirror(table: dict[Any, Any], sink: Any, default: Any = int) -> _MirroredCounts:
        mirrored = _MirroredCounts(default, sink)
        for key, value in table.items():
            mirrored[key] = value
        return mirrored

    STATS.sends = mirror(STATS.sends, _counter_sink(exporter, "smscode_sends"))
    STATS.verifies = mirror(STATS.verifies, _counter_sink(exporter, "smscode_verifies"))
    STATS.provider_calls = mirror(
        STATS.provider_calls, _counter_sink(exporter, "smscode_provider_requests")
    )
    STATS.guard_refusals = mirror(
        STATS.guard_refusals, _counter_sink(exporter, "smscode_guard_refusals")
    )
    STATS._latency_sum = mirror(STATS._latency_sum, _latency_sink(exporter), float)
    REPORTS.counts = mirror(REPORTS.counts, _counter_sink(exporter, "smscode_delivery_reports"))
    REPLIES.counts = mirror(REPLIES.counts, _reply_sink(exporter))
    SENDERS.counts = mirror(SENDERS.counts, _counter_sink(exporter, "smscode_sender_attempts"))
    FAILOVERS.counts = mirror(FAILOVERS.counts, _counter_sink(exporter, "smscode_sender_failovers"))
    _EXPORTER = exporter
    GUARD_LIMITS.set((int(w), a) for w, a in list(GUARD_LIMITS.limits.items()))
    return True


#: Reads of the multiprocess files before /metrics answers 503 (metrics_payload).
_COLLECT_ATTEMPTS = 5

METRICS_OFF = (
    "# flask-smscode: Prometheus metrics are off: prometheus_client is not installed "
    "(pip install 'flask-smscode[prometheus]'). Counting goes on in each process.\n"
)


def metrics_payload() -> tuple[bytes, int, str]:
    """What ``GET /metrics`` answers: (body, status, content type).

    Multiprocess mode: the sums over every worker's files. Otherwise this process's counts
    through the default REGISTRY (the collector registered once). Without prometheus_client:
    503 and a line saying why, not a crash and not an empty page taken for zero.
    """
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    except ImportError:
        return METRICS_OFF.encode(), 503, "text/plain; charset=utf-8"
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client import CollectorRegistry, multiprocess

        if not os.path.isdir(directory):
            text = f"# flask-smscode: {MULTIPROC_ENV} is set but is not a directory.\n"
            return text.encode(), 503, "text/plain; charset=utf-8"
        registry = CollectorRegistry()
        untyped: Any = multiprocess  # prometheus_client's multiprocess module has no hints
        untyped.MultiProcessCollector(registry, path=directory)
        for attempt in range(_COLLECT_ATTEMPTS):
            try:
                return generate_latest(registry), 200, CONTENT_TYPE_LATEST
            except (struct.error, ValueError):
                # A worker's file created this instant and not yet written (prometheus_client
                # reads its 0 bytes: struct.error); read again once it is, not a 500.
                time.sleep(0.01 * (attempt + 1))
        text = "# flask-smscode: the metric files were being written; scrape again.\n"
        return text.encode(), 503, "text/plain; charset=utf-8"
    try:
        register_metrics(REGISTRY)
    except ValueError:
        pass  # a collector of the same names is registered already (by the app itself)
    return generate_latest(REGISTRY), 200, CONTENT_TYPE_LATEST


def metrics_view() -> Any:
    """A Flask view serving :func:`metrics_payload`:
    ``app.add_url_rule("/metrics", "metrics", metrics_view)``."""
    from flask import Response

    body, status, mimetype = metrics_payload()
    return Response(body, status=status, content_type=mimetype)


def on_starting(server: Any = None) -> None:
    """gunicorn hook (``on_starting = on_starting`` in gunicorn.conf.py): empty the
    multiprocess directory before the first worker starts, so a restart does not add the
    last run's counts (prometheus_client's files are ``*.db``; nothing else is touched)."""
    directory = multiprocess_dir()
    if directory is None or not os.path.isdir(directory):
        return
    for entry in os.scandir(directory):
        if entry.is_file() and entry.name.endswith(".db"):
            os.unlink(entry.path)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook (``child_exit = child_exit`` in gunicorn.conf.py): a worker died or was
    replaced; its counters stay in the totals, its live gauges are dropped
    (prometheus_client's ``mark_process_dead``)."""
    if multiprocess_dir() is None:
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    untyped: Any = multiprocess  # no type hints there
    untyped.mark_process_dead(worker.pid)


enable_multiprocess()
