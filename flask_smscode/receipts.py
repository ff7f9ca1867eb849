"""Compatibility: delivery receipts live in :mod:`flask_smscode.aliyun.receipts`."""

from __future__ import annotations

from .aliyun.receipts import CHINA_TZ, DeliveryRecord, DeliveryReport, DeliveryStatus

__all__ = ["CHINA_TZ", "DeliveryRecord", "DeliveryReport", "DeliveryStatus"]
