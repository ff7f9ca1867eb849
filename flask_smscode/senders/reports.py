"""A delivery report in the form every vendor's parser produces and the core records.

A vendor's report format (Alibaba's SmsReport push, a queue message, another vendor's
callback) is that vendor's business; what the core needs of one report is this record, so
the bookkeeping in :mod:`flask_smscode.core.deliveries` names no vendor.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class MalformedReports(ValueError):
    """The body of a push is not a list of reports (the receiver answers 400)."""
