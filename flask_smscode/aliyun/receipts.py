"""Delivery receipts: QuerySendDetails, and its answer as typed records."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from flask_smscode.aliyun.errors import AliyunInvalidArguments, AliyunProviderRefused
from flask_smscode.aliyun.numbers import provider_phone
from flask_smscode.errors import InvalidPhone
from flask_smscode.phones import normalize_phone

if TYPE_CHECKING:
    from flask_smscode.aliyun.settings import AliyunSettings

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")  # Alibaba reports China time


class DeliveryStatus(enum.IntEnum):
    """``SendStatus`` of a receipt."""

    WAITING = 1  # no receipt from the carrier yet
    FAILED = 2
    DELIVERED = 3


@dataclass(frozen=True)
class DeliveryRecord:
    """One message to one phone. ``content`` is kept out of ``repr`` (a verification SMS
    contains its code); ``biz_id`` is only known when the query asked for one."""

    phone: str
    status: DeliveryStatus
    error_code: str
    template_code: str
    send_time: datetime | None
    receive_time: datetime | None
    out_id: str | None
    biz_id: str | None = None
    content: str = field(default="", repr=False)

    @property
    def delivered(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, without the content."""
        return {
            "phone": self.phone,
            "status": self.status.name.lower(),
            "error_code": self.error_code,
            "template_code": self.template_code,
            "send_time": _iso(self.send_time),
            "receive_time": _iso(self.receive_time),
            "out_id": self.out_id,
            "biz_id": self.biz_id,
        }


@dataclass(frozen=True)
class DeliveryReport:
    """One page of receipts; iterate it for the records."""

    total_count: int
    records: tuple[DeliveryRecord, ...]
    request_id: str | None = None

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any], biz_id: str | None = None) -> DeliveryReport:
        dtos = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        records = tuple(_record(dto, biz_id) for dto in dtos if isinstance(dto, Mapping))
        try:
            total = int(answer.get("TotalCount") or 0)  # a string in Alibaba's answer
        except (TypeError, ValueError):
            total = len(records)
        return cls(total, records, answer.get("RequestId"))


def _record(dto: Mapping[str, Any], biz_id: str | None) -> DeliveryRecord:
    try:
        status = DeliveryStatus(int(dto.get("SendStatus", 1)))
    except (TypeError, ValueError):
        status = DeliveryStatus.WAITING
    return DeliveryRecord(
        phone=str(dto.get("PhoneNum", "")),
        status=status,
        error_code=str(dto.get("ErrCode") or ""),
        template_code=str(dto.get("TemplateCode") or ""),
        send_time=_china_time(dto.get("SendDate")),
        receive_time=_china_time(dto.get("ReceiveDate")),
        out_id=dto.get("OutId") or None,
        biz_id=biz_id,
        content=str(dto.get("Content") or ""),
    )


def _china_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class ReceiptQueries:
    """``query_send_details`` for :class:`~flask_smscode.AliyunSms` (needs ``settings``
    and ``call``)."""

    settings: AliyunSettings

    if TYPE_CHECKING:

        def call(self, action: str, params: Mapping[str, str | None]) -> dict[str, Any]: ...

    def query_send_details(
        self,
        phone: str,
        biz_id: str | None = None,
        send_date: date | str | None = None,
        page_size: int = 10,
        page: int = 1,
    ) -> DeliveryReport:
        """Receipts of the messages sent to ``phone`` on ``send_date`` (China time, today by
        default; Alibaba keeps 30 days), newest first, one page at a time."""
        try:
            e164 = normalize_phone(phone, self.settings.default_region, None)
        except InvalidPhone:
            raise AliyunInvalidArguments("The phone number is not valid") from None
        if not isinstance(page_size, int) or not 1 <= page_size <= 50:
            raise AliyunInvalidArguments("page_size must be from 1 to 50")
        if not isinstance(page, int) or page < 1:
            raise AliyunInvalidArguments("page must be 1 or more")
        answer = self.call(
            "QuerySendDetails",
            {
                "PhoneNumber": provider_phone(e164),
                "SendDate": send_date_text(send_date),
                "PageSize": str(page_size),
                "CurrentPage": str(page),
                "BizId": biz_id or None,
            },
        )
        if answer.get("Code") != "OK":
            raise AliyunProviderRefused(
                f"Alibaba Cloud answered QuerySendDetails with {answer.get('Code') or 'no code'}",
                provider_code=answer.get("Code") or None,
                request_id=answer.get("RequestId"),
                http_status=200,
            )
        return DeliveryReport.from_answer(answer, biz_id)


def send_date_text(value: date | str | None) -> str:
    """``yyyyMMdd`` in China time; accepts a date, a datetime, ``20261121`` or ``2026-11-21``."""
    if value is None:
        return datetime.now(CHINA_TZ).strftime("%Y%m%d")
    if isinstance(value, datetime):
        return (value.astimezone(CHINA_TZ) if value.tzinfo else value).strftime("%Y%m%d")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = str(value).strip().replace("-", "")
    try:
        return datetime.strptime(text, "%Y%m%d").strftime("%Y%m%d")
    except ValueError:
        raise AliyunInvalidArguments("send_date must be a date, YYYYMMDD or YYYY-MM-DD") from None
