"""Delivery bookkeeping: which code send a delivery report belongs to, and what the last
code's delivery is. Provider-blind: a vendor's parser turns its push into
:class:`~flask_smscode.senders.reports.Report` records, and this module matches and stores
them; it takes the store and the settings it needs, never the service.

**Which send a report belongs to.** A report whose OutId carries a valid tag for one of its
phones (:mod:`flask_smscode.core.outids`) is one of our code sends. A report without one is
matched by BizId + phone: once the provider accepted a send, the service records it as
"waiting" with its BizId (:meth:`Deliveries.record_sent`; one more round trip per send, only
while the receiver is on). Anything else (notifications, other systems on the account, a
forged or mangled report) is *unknown*: counted and dropped, never an error.

**What is kept.** One field per phone (``d`` in the phone's hash, see stores/base.py): the
last reported send's untagged OutId, delivered or failed, and its bounded err_code. A
duplicate changes nothing (first report wins); a report of an *older* send than the one
stored is late and dropped, so a slow report never overwrites a newer send's state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask_smscode.config import ReportSettings
from flask_smscode.core.guard import GuardSettings
from flask_smscode.core.outids import OutIds
from flask_smscode.events import log_event, send_signal
from flask_smscode.metrics import DELIVERY, REPORTS
from flask_smscode.phones import carrier_label, mask_phone
from flask_smscode.senders.reports import MAX_DELIVERY_SECONDS, Report
from flask_smscode.signals import delivery_reported
from flask_smscode.stores.base import LastDelivery, Store
from flask_smscode.stores.stats import StatsStore

STATES = {"delivered": "d", "failed": "f", "waiting": "w"}
_BIZ_ID = re.compile(r"[0-9A-Za-z^_.:-]{1,40}")


@dataclass(frozen=True)
class Delivery:
    """The last code's delivery as reported by the provider.

    ``state``: ``waiting`` (a live code whose report has not arrived), ``delivered``,
    ``failed`` (``err_code`` says why, e.g. ``MK:0001``) or ``none`` (no live code and no
    report kept). ``out_id`` is the OutId of the send the state is about. ``sender`` names
    the sender (of ``SMSCODE_SENDER`` / ``SMSCODE_SENDER_ROUTES``) that carried that send,
    when it is the live code's (the store keeps the carrier only while the code lives).
    """

    state: str
    err_code: str | None = None
    out_id: str | None = None
    sender: str | None = None

    def as_json(self) -> dict[str, Any]:
        # ``sender`` stays out: this dict is a published shape (status --json has its own
        # top-level "sender"); Python callers read ``.sender``.
        return {"state": self.state, "err_code": self.err_code, "out_id": self.out_id}


class Deliveries:
    """One app's delivery bookkeeping over its store."""

    # The app's pumping guard (set by the service): dead-number reports teach it.
    guard: GuardSettings | None = None

    def __init__(
        self,
        store: Store,
        settings: ReportSettings,
        out_ids: OutIds,
        *,
        enabled: bool | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.out_ids = out_ids
        # Any report channel on (its <prefix>_SECRET set), not only Alibaba's.
        self._enabled = settings.enabled if enabled is None else enabled or settings.enabled

    @property
    def enabled(self) -> bool:
        """Whether reports are received (a report channel's secret is set)."""
        return self._enabled

    def record_sent(self, phone: str, out_id: str, biz_id: str | None) -> None:
        """Remember a send the provider accepted as "waiting" with its BizId, so that its
        report is matched by BizId + phone when it comes without our OutId. Taken only when
        the receiver is on; raises StorageUnavailable (the caller logs it: the SMS is out)."""
        if not self.enabled or not biz_id or not _BIZ_ID.fullmatch(biz_id):
            return
        report_id = self.out_ids.report_id(phone, out_id)
        if report_id is not None:
            self.store.record_delivery(
                phone, report_id, STATES["waiting"], biz_id, ttl_ms=self.settings.ttl_ms
            )

    def record(self, reports: Sequence[Report], app: Any = None) -> dict[str, int]:
        """Store each report against its send; returns counts per outcome.

        Raises StorageUnavailable (from the store) when a report could not be stored: the
        receiver then answers 503 and the provider pushes the whole list again, where the
        reports already stored come back as duplicates (idempotent).
        """
        counts: dict[str, int] = {}
        for report in reports:
            outcome = self._record_one(report, app)
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def _record_one(self, report: Report, app: Any) -> str:
        for phone in report.phones:
            report_id = self.out_ids.report_id(phone, report.out_id) or self._by_biz_id(
                phone, report
            )
            if report_id is not None:
                break
        else:
            REPORTS.count("unknown", report.err_code)
            return "unknown"
        state = "delivered" if report.success else "failed"
        result = self.store.record_delivery(
            phone, report_id, STATES[state], report.err_code, ttl_ms=self.settings.ttl_ms
        )
        outcome = state if result == "stored" else result
        REPORTS.count(outcome, report.err_code)
        seconds = report.delivery_seconds
        if seconds is None and report.received_at is not None:
            seconds = report.received_at - self.out_ids.sent_at(report_id)
            if not 0 <= seconds <= MAX_DELIVERY_SECONDS:
                seconds = None  # a clock or a mix-up, not a delivery time
        if result == "stored" and seconds is not None:
            # Latency per vendor and carrier: first report of a send only (no duplicates).
            DELIVERY.observe(report.vendor, carrier_label(phone), state, seconds)
            if state == "delivered" and isinstance(self.store, StatsStore):
                # The store's hourly latency buckets (flask smscode stats): one more call
                # on the report path, never on a user's request; delivered sends only.
                self.store.count_delivery(carrier_label(phone), report.vendor, seconds)
        if result == "stored" and report.number_dead:
            self._teach_guard(phone)
        if result == "stored":
            log_event(
                logging.INFO,
                "report",
                phone=mask_phone(phone),
                outcome=state,
                err_code=report.err_code,
                out_id=report.out_id,
                biz_id=report.biz_id[:40],
            )
            # A receiver's bug must not make the provider push again: logged, not raised.
            send_signal(
                delivery_reported,
                app,
                phone=phone,
                state=state,
                err_code=report.err_code,
                out_id=report.out_id,
            )
        return outcome

    def _teach_guard(self, phone: str) -> None:
        """Receipts teach the pumping guard: a send whose number cannot receive (the vendor's
        table says so, ``Report.number_dead``) counts against its prefix like one more
        unverified send. Only a report stored for the first time: a repeated push counts
        nothing. A delivered report counts for the prefix only through the code's verify
        (a verified code was delivered): counting it again here would credit one send twice,
        and pumped numbers are delivered too. Raises StorageUnavailable like record()."""
        guard = self.guard
        if guard is None or not guard.converts:
            return
        self.store.guard_learn(guard.prefix_of(phone), guard.window * 1000)
        log_event(logging.INFO, "guard", outcome="learned_dead_number", phone=mask_phone(phone))

    def _by_biz_id(self, phone: str, report: Report) -> str | None:
        """A report without our OutId: the phone's last send if its BizId is the report's."""
        if not report.biz_id or not _BIZ_ID.fullmatch(report.biz_id):
            return None
        last = self.store.last_delivery(phone)
        if last is not None and last.state == "waiting" and last.err_code == report.biz_id:
            return str(last.report_id)
        return None

    def of(self, phone: str, live_out_id: str | None) -> Delivery:
        """The delivery of ``phone``'s (E.164) last code, given its live code's OutId."""
        return delivery_of(self.out_ids, phone, live_out_id, self.store.last_delivery(phone))


def delivery_of(
    codec: OutIds, phone: str, live_out_id: str | None, last: LastDelivery | None
) -> Delivery:
    """Combine the live code's OutId with the last stored report."""
    live_id = codec.report_id(phone, live_out_id) if live_out_id else None
    if last is not None and last.state == "waiting":
        if live_out_id and live_id != last.report_id:
            return Delivery("waiting", out_id=live_out_id)
        return Delivery("waiting", out_id=codec.out_id(phone, last.report_id))
    if live_out_id and (last is None or live_id != last.report_id):
        # The live code's report has not arrived (a stored one is of an older send).
        return Delivery("waiting", out_id=live_out_id)
    if last is None:
        return Delivery("none")
    return Delivery(last.state, last.err_code, codec.out_id(phone, last.report_id))
