"""Delivery reports (SmsReport) pushed by Alibaba Cloud: who they belong to, and what the
last code's delivery is.

Alibaba POSTs a JSON array of ``{phone_number, send_time, report_time, success, err_code,
err_msg, sms_size, biz_id, out_id}`` to the URL set in the console (HTTP batch push mode),
retries a push that is not answered HTTP 200 (after 1, 5 and 10 minutes), and may deliver a
report more than once or minutes late. It signs nothing. The HTTP side is
:mod:`flask_smscode.report_view`; this module decides what a report means.

**Which send a report belongs to.** Every code send carries an OutId minted here, 16
base-36 characters: ``tag(6) + random(2) + time(8)``. ``time`` is the send's creation time
in centiseconds (fixed width, so later sends sort later as text); ``tag`` is an HMAC of the
phone and the other 10 characters under a key derived from the app secret. A report whose
OutId carries a valid tag for its phone is one of our code sends — even after the code was
verified and its hash field deleted — and the tag cannot be forged by whoever learns the
receiver's URL. Anything else (notifications, other systems on the account, a forged or
mangled report) is *unknown*: counted and dropped, never an error. A report without a valid
OutId of ours is matched by BizId + phone: once the provider accepted a send, the service
records it as "waiting" with its BizId (:func:`record_sent`; one more round trip per send,
only while the receiver is on).

**What is kept.** One field per phone (``d`` in the phone's hash, see stores/base.py): the
last reported send's untagged OutId, delivered or failed, and its bounded err_code. A
duplicate changes nothing (first report wins); a report of an *older* send than the one
stored is late and dropped, so a slow report never overwrites a newer send's state.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import get_setting
from ..errors import ConfigurationError
from ..events import log_event
from ..metrics import REPORTS, report_err_label
from ..phones import mask_phone
from ..signals import delivery_reported
from ..stores.base import LastDelivery

if TYPE_CHECKING:
    from ..service import SmsCodeService

logger = logging.getLogger("flask_smscode")

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
OUT_ID_LENGTH = 16
_TAG, _RANDOM, _TIME = 6, 2, 8
_OUT_ID = re.compile(r"[0-9a-z]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")
_DIGITS = re.compile(r"\+?[0-9]{6,17}")
MIN_SECRET_CHARS = 32
STATES = {"delivered": "d", "failed": "f", "waiting": "w"}
_BIZ_ID = re.compile(r"[0-9A-Za-z^_.:-]{1,40}")


def _b36(number: int, width: int) -> str:
    out = ""
    for _ in range(width):
        number, digit = divmod(number, 36)
        out = _B36[digit] + out
    return out


class OutIds:
    """Mint and check the OutIds of code sends (see the module docstring)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"flask-smscode out id", hashlib.sha256).digest()

    def _tag(self, phone: str, body: str) -> str:
        digest = hmac.new(self._key, f"{phone}|{body}".encode(), hashlib.sha256).digest()
        return _b36(int.from_bytes(digest[:8], "big") % 36**_TAG, _TAG)

    def new(self, phone: str, now: float | None = None) -> str:
        """A fresh OutId for a code send to ``phone`` (E.164)."""
        centis = int((time.time() if now is None else now) * 100)
        body = _b36(secrets.randbelow(36**_RANDOM), _RANDOM) + _b36(centis, _TIME)
        return self._tag(phone, body) + body

    def report_id(self, phone: str, out_id: object) -> str | None:
        """The untagged part of ``out_id`` if it is ours for ``phone``, else ``None``."""
        if not isinstance(out_id, str) or not _OUT_ID.fullmatch(out_id):
            return None
        body = out_id[_TAG:]
        return body if hmac.compare_digest(self._tag(phone, body), out_id[:_TAG]) else None

    def out_id(self, phone: str, report_id: str) -> str:
        """The full OutId again, from a stored ``report_id``."""
        return self._tag(phone, report_id) + report_id


def report_phones(raw: object) -> tuple[str, ...]:
    """The E.164 numbers a report's ``phone_number`` may stand for.

    Alibaba writes mainland numbers as 11 digits and others as country code + number
    (``provider_phone``): ``13800138000`` may be ``+8613800138000`` or a +1 number, so both
    are tried and the OutId's tag decides.
    """
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        return ()
    digits = raw.lstrip("+")
    if raw.startswith("+"):
        return (raw,)
    if len(digits) == 11 and digits.startswith("1"):
        return (f"+86{digits}", f"+{digits}")
    return (f"+{digits}",)


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSettings:
    """The receiver's validated settings; ``secret`` ``None`` means it is off."""

    secret: str | None = field(default=None, repr=False)
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_bytes: int = 1_048_576
    ttl_ms: int = 86_400_000

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReportSettings:
        secret = get_setting(config, "SMSCODE_ALIYUN_REPORT_SECRET")
        if secret is not None and (not isinstance(secret, str) or not _SECRET.fullmatch(secret)):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_REPORT_SECRET must be 32 to 128 characters of A-Z a-z 0-9 _ - "
                "(it is a path segment; e.g. secrets.token_urlsafe(32))."
            )
        allowed = get_setting(config, "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS")
        if isinstance(allowed, str):
            allowed = [allowed]
        networks = []
        try:
            for item in allowed:
                networks.append(ipaddress.ip_network(str(item), strict=False))
        except (TypeError, ValueError):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS must be a list of addresses or networks "
                "(e.g. ['47.96.0.0/16', '2408:4000::/32'])."
            ) from None
        max_bytes = get_setting(config, "SMSCODE_ALIYUN_REPORT_MAX_BYTES")
        ttl = get_setting(config, "SMSCODE_ALIYUN_REPORT_TTL_SECONDS")
        for key, value, low, high in (
            ("SMSCODE_ALIYUN_REPORT_MAX_BYTES", max_bytes, 1024, 64 * 1_048_576),
            ("SMSCODE_ALIYUN_REPORT_TTL_SECONDS", ttl, 60, 30 * 86400),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"{key} must be a whole number from {low} to {high}; got {value!r}."
                )
        return cls(secret, tuple(networks), max_bytes, ttl * 1000)

    def secret_matches(self, candidate: str) -> bool:
        """Constant time: the path secret must not leak through response timing."""
        if self.secret is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.secret.encode())

    def source_allowed(self, address: str | None) -> bool:
        if not self.allowed:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.allowed)


# -- parsing -----------------------------------------------------------------------------


class MalformedReports(ValueError):
    """The body is not a JSON array of report objects (answered 400, Alibaba retries)."""


@dataclass(frozen=True)
class Report:
    """One SmsReport, reduced to what is used. ``err_code`` is already bounded."""

    phone_number: str
    out_id: str
    biz_id: str
    success: bool
    err_code: str


_TEXT_FIELDS = (
    "phone_number",
    "out_id",
    "biz_id",
    "err_code",
    "err_msg",
    "send_time",
    "report_time",
    "sms_size",
)


def parse_reports(body: bytes) -> list[Report]:
    """The reports of one push; raises MalformedReports with a short reason."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedReports("the body is not JSON") from None
    if not isinstance(data, list):
        raise MalformedReports("the body is not a JSON array")
    reports = []
    for item in data:
        if not isinstance(item, dict):
            raise MalformedReports("a report is not a JSON object")
        if not isinstance(item.get("success"), bool):
            raise MalformedReports("a report has no boolean success")
        for name in _TEXT_FIELDS:
            if item.get(name) is not None and not isinstance(item[name], (str, int)):
                raise MalformedReports(f"a report's {name} is not text")
        reports.append(
            Report(
                str(item.get("phone_number") or ""),
                str(item.get("out_id") or ""),
                str(item.get("biz_id") or ""),
                item["success"],
                report_err_label(item.get("err_code")),
            )
        )
    return reports


# -- storing -----------------------------------------------------------------------------


def out_ids_of(service: SmsCodeService) -> OutIds:
    """The service's OutId codec (built from its secret if the service has none)."""
    codec = getattr(service, "out_ids", None)
    if not isinstance(codec, OutIds):
        codec = OutIds(service.settings.secret)
        service.out_ids = codec
    return codec


def record_reports(
    service: SmsCodeService, settings: ReportSettings, reports: Sequence[Report], app: Any = None
) -> dict[str, int]:
    """Store each report against its send; returns counts per outcome.

    Raises StorageUnavailable (from the store) when a report could not be stored: the
    receiver then answers 503 and Alibaba pushes the whole array again, where the reports
    already stored come back as duplicates (idempotent).
    """
    codec = out_ids_of(service)
    counts: dict[str, int] = {}
    for report in reports:
        outcome = _record_one(service, codec, settings, report, app)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _record_one(
    service: SmsCodeService, codec: OutIds, settings: ReportSettings, report: Report, app: Any
) -> str:
    for phone in report_phones(report.phone_number):
        report_id = codec.report_id(phone, report.out_id) or _by_biz_id(service, phone, report)
        if report_id is not None:
            break
    else:
        REPORTS.count("unknown", report.err_code)
        return "unknown"
    state = "delivered" if report.success else "failed"
    result = service.store.record_delivery(  # type: ignore[attr-defined]
        phone, report_id, STATES[state], report.err_code, ttl_ms=settings.ttl_ms
    )
    outcome = state if result == "stored" else result
    REPORTS.count(outcome, report.err_code)
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
        if app is not None:
            try:
                delivery_reported.send(
                    app, phone=phone, state=state, err_code=report.err_code, out_id=report.out_id
                )
            except Exception as exc:  # a receiver's bug must not make Alibaba push again
                logger.error(
                    "smscode signal delivery-reported: a receiver raised %s", type(exc).__name__
                )
    return outcome


def _by_biz_id(service: SmsCodeService, phone: str, report: Report) -> str | None:
    """A report without our OutId: the phone's last send if its BizId is the report's (the
    service records it as "waiting" when the receiver is on; see :func:`record_sent`)."""
    if not report.biz_id or not _BIZ_ID.fullmatch(report.biz_id):
        return None
    last = service.store.last_delivery(phone)  # type: ignore[attr-defined]
    if last is not None and last.state == "waiting" and last.err_code == report.biz_id:
        return str(last.report_id)
    return None


def record_sent(
    service: SmsCodeService, settings: ReportSettings, phone: str, out_id: str, biz_id: str | None
) -> None:
    """Remember a send the provider accepted as "waiting" with its BizId, so that its report
    is matched by BizId + phone when it comes without our OutId. One more round trip per
    send, taken only when the receiver is on (SMSCODE_ALIYUN_REPORT_SECRET)."""
    if not settings.enabled or not biz_id or not _BIZ_ID.fullmatch(biz_id):
        return
    report_id = out_ids_of(service).report_id(phone, out_id)
    if report_id is not None:
        service.store.record_delivery(  # type: ignore[attr-defined]
            phone, report_id, STATES["waiting"], biz_id, ttl_ms=settings.ttl_ms
        )


# -- what status shows -------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """The last code's delivery as reported by Alibaba Cloud.

    ``state``: ``waiting`` (a live code whose report has not arrived), ``delivered``,
    ``failed`` (``err_code`` says why, e.g. ``MK:0001``) or ``none`` (no live code and no
    report kept). ``out_id`` is the OutId of the send the state is about.
    """

    state: str
    err_code: str | None = None
    out_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "err_code": self.err_code, "out_id": self.out_id}


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


def delivery_for(service: SmsCodeService, phone: str, live_out_id: str | None) -> Delivery:
    """The delivery of ``phone``'s (E.164) last code, given its live code's OutId."""
    last = service.store.last_delivery(phone)  # type: ignore[attr-defined]
    return delivery_of(out_ids_of(service), phone, live_out_id, last)


def delivery_status(phone: str, purpose: str = "login") -> Delivery:
    """The last code's delivery for ``phone`` and ``purpose`` in the current app.

    Needs the report receiver (SMSCODE_ALIYUN_REPORT_SECRET) and the console's HTTP batch
    push pointed at it; without reports a live code stays ``waiting``.
    """
    from ..service import get_service  # the service imports this module

    service = get_service()
    e164 = service.normalize(phone)
    snapshot = service.status(e164, purpose)
    return delivery_for(service, e164, snapshot.out_id)
