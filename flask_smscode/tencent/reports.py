"""Delivery-status callbacks (短信下发状态通知, 回执) pushed by Tencent Cloud: parsing only.

Tencent POSTs a JSON array (at most 100 per push, maybe several sends mixed) of
``{user_receive_time, nationcode, mobile, report_status, errmsg, description, sid, ext}``
to the callback URL set in the console, and retries a push that fails (twice). ``ext`` is
the send's ``SessionContext`` — our OutId, so the report finds its send; Tencent documents
that the ``ext`` field must be enabled for the account by its SMS support (腾讯云短信小助手),
so a report without it is matched by ``sid`` (= SendSms' ``SerialNo``, kept as the send's
BizId while reports are on) and phone, as Alibaba's are. ``report_status`` is ``SUCCESS`` or
``FAIL``; ``errmsg`` is the carrier status (``DELIVRD``, ``MK:0001``...), kept bounded.

Tencent expects ``{"result": 0, "errmsg": "OK"}``; a non-zero ``result`` makes it push
again. The HTTP side is :mod:`flask_smscode.web.reports` (channel ``tencent``: ``POST
/sms/reports/tencent/<secret>``); what a report means is :mod:`flask_smscode.core.deliveries`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from flask_smscode.metrics import report_err_label
from flask_smscode.senders.reports import MalformedReports, Report, ReportChannel

__all__ = ["CHANNEL", "MalformedReports", "answer", "parse_reports", "report_phones"]

_DIGITS = re.compile(r"[0-9]{4,17}")
_CALLING_CODE = re.compile(r"[0-9]{1,4}")
_STATUSES = {"SUCCESS": True, "FAIL": False}
_BEIJING = timezone(timedelta(hours=8))
CHANNEL_NAME = "tencent"  # the report channel, and the vendor label of its reports
_TEXT_FIELDS = (
    "user_receive_time",
    "nationcode",
    "mobile",
    "errmsg",
    "description",
    "sid",
    "ext",
)


def report_phones(nationcode: object, mobile: object) -> tuple[str, ...]:
    """The E.164 number of a report (``nationcode`` + ``mobile``). Without a nationcode an
    11-digit ``1…`` number is the mainland's (Tencent's default, +86)."""
    raw = str(mobile or "").lstrip("+")
    code = str(nationcode or "").lstrip("+")
    if not _DIGITS.fullmatch(raw):
        return ()
    if code and _CALLING_CODE.fullmatch(code):
        return (f"+{code}{raw}",)
    if len(raw) == 11 and raw.startswith("1"):
        return (f"+86{raw}",)
    return (f"+{raw}",)


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
        status = item.get("report_status")
        if status not in _STATUSES:
            raise MalformedReports("a report's report_status is not SUCCESS or FAIL")
        for name in _TEXT_FIELDS:
            if item.get(name) is not None and not isinstance(item[name], (str, int)):
                raise MalformedReports(f"a report's {name} is not text")
        reports.append(
            Report(
                report_phones(item.get("nationcode"), item.get("mobile")),
                str(item.get("ext") or ""),
                str(item.get("sid") or ""),
                _STATUSES[status],
                report_err_label(item.get("errmsg")),
                vendor=CHANNEL_NAME,
                received_at=received_at(item.get("user_receive_time")),
            )
        )
    return reports


def received_at(text: object) -> float | None:
    """``user_receive_time`` (``2015-10-17 08:03:04``, Beijing time, UTC+8) in POSIX
    seconds, or None. Tencent reports no send time: the core measures the delivery time
    from the send time in the send's OutId (core/deliveries.py)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=_BEIJING).timestamp()


def answer(ok: bool, reason: str) -> dict[str, Any]:
    """Tencent's answer format: ``{"result": 0, "errmsg": "OK"}``; non-zero on refusal."""
    return {"result": 0, "errmsg": "OK"} if ok else {"result": 1, "errmsg": reason}


CHANNEL = ReportChannel(CHANNEL_NAME, "SMSCODE_TENCENT_REPORT", parse_reports, answer)
