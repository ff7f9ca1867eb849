"""Delivery receipts from QuerySendDetails, as typed records."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")  # Alibaba reports China time


class DeliveryStatus(enum.IntEnum):
    """``SendStatus`` of a receipt."""

    WAITING = 1    # no receipt from the carrier yet
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
        return {"phone": self.phone, "status": self.status.name.lower(),
                "error_code": self.error_code, "template_code": self.template_code,
                "send_time": _iso(self.send_time), "receive_time": _iso(self.receive_time),
                "out_id": self.out_id, "biz_id": self.biz_id}


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
        phone=str(dto.get("PhoneNum", "")), status=status,
        error_code=str(dto.get("ErrCode") or ""),
        template_code=str(dto.get("TemplateCode") or ""),
        send_time=_china_time(dto.get("SendDate")),
        receive_time=_china_time(dto.get("ReceiveDate")),
        out_id=dto.get("OutId") or None, biz_id=biz_id, content=str(dto.get("Content") or ""))


def _china_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
