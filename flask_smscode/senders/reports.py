"""A delivery report in the form every vendor's parser produces and the core records.

A vendor's report format (Alibaba's SmsReport push, a queue message, another vendor's
callback) is that vendor's business; what the core needs of one report is this record, so
the bookkeeping in :mod:`flask_smscode.core.deliveries` names no vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any


@dataclass(frozen=True)
class Report:
    """One delivery report, reduced to what is used.

    ``phones`` are the E.164 numbers the report's phone field may stand for (a vendor may
    write numbers without their country code; the OutId's tag decides which one it is);
    ``err_code`` is already bounded (:func:`flask_smscode.metrics.report_err_label`).
    """

    phones: tuple[str, ...]
    out_id: str
    biz_id: str
    success: bool
    err_code: str
    # The vendor's own table says this failure means the number cannot receive at all (does
    # not exist, stopped, blacklisted): the pumping guard counts it against the number's
    # prefix (core/deliveries.py). The vendor classifies; the core only asks.
    number_dead: bool = False
    # Which vendor pushed it (its report channel's name, e.g. "aliyun") and how many seconds
    # passed from the provider's send to the handset's receipt, when the vendor reports both
    # times: the histogram smscode_delivery_seconds (core/deliveries.py, metrics.DELIVERY).
    vendor: str | None = None
    delivery_seconds: float | None = None
    # When the handset received it (POSIX seconds), for a vendor that reports only that
    # time (Tencent): the core then measures from the send time its OutId carries.
    received_at: float | None = None


MAX_DELIVERY_SECONDS = 86400.0  # a longer delivery time is a clock or a mix-up


class MalformedReports(ValueError):
    """The body of a push is not a list of reports (the receiver answers 400)."""


@dataclass(frozen=True)
class ReportChannel:
    """How one vendor pushes delivery reports, described as data so the receiver
    (:mod:`flask_smscode.web.reports`) stays vendor-blind.

    ``name`` is the URL segment of ``POST /sms/reports/<name>/<secret>`` and the entry-point
    name (group ``flask_smscode.reports``); ``setting_prefix`` names its keys
    (``<prefix>_SECRET``, ``_ALLOWED_IPS``, ``_MAX_BYTES``: see
    :class:`flask_smscode.config.ReportSettings`); ``parse`` turns a body into reports or raises
    :class:`MalformedReports`; ``answer(ok, reason)`` is the JSON body the vendor expects back
    (``ok`` false with a short reason for 400/403/413/503 answers).
    """

    name: str
    setting_prefix: str
    parse: Callable[[bytes], list[Report]]
    answer: Callable[[bool, str], dict[str, Any]]
    # The vendor's other receiving settings (Alibaba's message queue, SMSCODE_ALIYUN_MNS_*),
    # checked at start-up with the rest whichever sender the app uses: a typo in a key the
    # consumer reads fails when the app starts, not hours later in `receipts consume`.
    validate: Callable[[Mapping[str, Any]], None] | None = None


REPORT_GROUP = "flask_smscode.reports"
_channels: dict[str, ReportChannel] | None = None


def report_channels() -> dict[str, ReportChannel]:
    """Every report channel declared in the ``flask_smscode.reports`` entry-point group, by
    name (read once). A channel whose module cannot be loaded (its vendor's package is not
    installed) is left out: its URL is then the 404 of a receiver that is off."""
    global _channels
    if _channels is None:
        found: dict[str, ReportChannel] = {}
        for point in entry_points(group=REPORT_GROUP):
            try:
                channel = point.load()
            except (ImportError, AttributeError):
                continue
            if isinstance(channel, ReportChannel) and channel.name == point.name:
                found[point.name] = channel
        _channels = found
    return dict(_channels)
