"""Delivery reports (SmsReport) pushed by Alibaba Cloud: parsing only.

Alibaba POSTs a JSON array of ``{phone_number, send_time, report_time, success, err_code,
err_msg, sms_size, biz_id, out_id}`` to the URL set in the console (HTTP batch push mode),
retries a push that is not answered HTTP 200 (after 1, 5 and 10 minutes), and may deliver a
report more than once or minutes late. It signs nothing. The HTTP side is
:mod:`flask_smscode.web.reports`; which send a report belongs to and what is kept is decided
by :mod:`flask_smscode.core.deliveries`, which takes the provider-blind
:class:`~flask_smscode.senders.reports.Report` records made here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_smscode.aliyun.outcomes import receipt_number_dead
from flask_smscode.metrics import report_err_label
from flask_smscode.senders.reports import (
    MAX_DELIVERY_SECONDS,
    MalformedReports,
    Report,
    ReportChannel,
)

__all__ = ["CHANNEL", "MalformedReports", "parse_reports", "report_phones"]

OK_MESSAGE = "接收成功"  # Alibaba's own example answer; only code 0 (a number) is checked

_DIGITS = re.compile(r"\+?[0-9]{6,17}")
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
                report_phones(str(item.get("phone_number") or "")),
                str(item.get("out_id") or ""),
                str(item.get("biz_id") or ""),
                item["success"],
                report_err_label(item.get("err_code")),
                # the pumping guard learns from numbers that cannot receive (outcomes.py)
                number_dead=not item["success"] and receipt_number_dead(str(item.get("err_code"))),
                vendor="aliyun",
                delivery_seconds=delivery_seconds(item.get("send_time"), item.get("report_time")),
            )
        )
    return reports


_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def delivery_seconds(sent: object, reported: object) -> float | None:
    """``report_time`` minus ``send_time`` in seconds, or None when either is missing or
    malformed or the difference is negative or over a day.

    Both are Alibaba's text ``2017-02-02 11:12:13`` in the same zone (Beijing time), so the
    difference needs no zone; the receiver's clock plays no part.
    """
    if not isinstance(sent, str) or not isinstance(reported, str):
        return None
    try:
        seconds = (
            datetime.strptime(reported[:19], _TIME_FORMAT)
            - datetime.strptime(sent[:19], _TIME_FORMAT)
        ).total_seconds()
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_DELIVERY_SECONDS else None


def answer(ok: bool, reason: str) -> dict[str, Any]:
    """Alibaba's answer format: ``{"code": 0, "msg": ...}``, a non-zero code on refusal."""
    return {"code": 0, "msg": OK_MESSAGE} if ok else {"code": 1, "msg": reason}


# The receiver's description of this vendor (entry point group flask_smscode.reports); its
# route is also the historical POST /sms/reports/<secret>.
def validate_queue_settings(config: Mapping[str, Any]) -> None:
    """The message queue's keys (``SMSCODE_ALIYUN_MNS_*``, read by ``flask smscode receipts
    consume``), checked when the app starts whatever its sender (aliyun/mns.py)."""
    from flask_smscode.aliyun.mns import MnsSettings  # the queue's module, when checked

    MnsSettings.from_config(config)


CHANNEL = ReportChannel(
    "aliyun", "SMSCODE_ALIYUN_REPORT", parse_reports, answer, validate_queue_settings
)
