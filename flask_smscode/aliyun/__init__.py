"""Alibaba Cloud SMS (Dysmsapi 2017-05-25): the provider in one package, one module per job.

=============  ==========================================================================
settings.py    ``AliyunSettings``: the SMSCODE_ALIYUN_* keys, validated once
transport.py   the one door to aliyun-python-sdk-core (lazy import, traps defused)
sendsms.py     one SendSms call and its typed answer ``SendSmsResponse``
sender.py      ``AliyunSender``: a verification code to one phone (``SMSCODE_SENDER``)
notify.py      ``send_message`` / ``sendMessage``: one template to many phones, in batches
sendbatch.py   one SendBatchSms call (per-number signatures and values, at most 100)
batch.py       ``send_batch``: per-recipient values, validated, chunked, run concurrently
receipts.py    ``query_send_details``: ``DeliveryReport`` of ``DeliveryRecord``/``DeliveryStatus``
reports.py     delivery reports pushed by Alibaba Cloud (SmsReport): parsing only
replies.py     users' replies (SmsUp), pushed or queued: parsing only
mns.py         MNS queues over their REST API: SMSCODE_ALIYUN_MNS_*, signature, receive/delete
queue.py       the queue consumer: QueryTokenForMnsQueue, decoding, receive → record → delete
errors.py      ``AliyunSmsError`` and its 46001/46002/46003 subclasses
outcomes.py    the one table of Alibaba error codes: what each means to a send
checks.py      ``flask smscode doctor``'s checks of an Alibaba Cloud sender
loaders.py     the low-code element's ``sms.json`` / ``e.json``
numbers.py     numbers in Alibaba's format (``provider_phone``)
client.py      ``AliyunSms``: the public client assembling the jobs above
=============  ==========================================================================

This folder may import the package's leaves (errors, phones, metrics, config) and
``senders/`` (the contract it implements), never ``core/``, ``web/`` or ``cli/``: it sits
below them. Names load on first use (PEP 562), like ``flask_smscode`` itself, so importing
one module does not import them all.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "API_VERSION": "transport",
    "AliyunInvalidArguments": "errors",
    "AliyunProviderRefused": "errors",
    "AliyunRequestFailed": "errors",
    "AliyunSender": "sender",
    "AliyunSettings": "settings",
    "AliyunSms": "client",
    "AliyunSmsError": "errors",
    "BatchEntry": "batch",
    "CHINA_TZ": "receipts",
    "DeliveryRecord": "receipts",
    "DeliveryReport": "receipts",
    "DeliveryStatus": "receipts",
    "MAX_PHONES_PER_BATCH_CALL": "sendbatch",
    "MAX_PHONES_PER_CALL": "sendsms",
    "PARAM_MISSING": "errors",
    "PROVIDER_ERROR": "errors",
    "REQUEST_FAILED": "errors",
    "SendSmsResponse": "sendsms",
    "Transport": "transport",
    "provider_phone": "numbers",
    "silence_sdk_logs": "transport",
}

if TYPE_CHECKING:
    from flask_smscode.aliyun.batch import BatchEntry
    from flask_smscode.aliyun.client import AliyunSms
    from flask_smscode.aliyun.errors import (
        PARAM_MISSING,
        PROVIDER_ERROR,
        REQUEST_FAILED,
        AliyunInvalidArguments,
        AliyunProviderRefused,
        AliyunRequestFailed,
        AliyunSmsError,
    )
    from flask_smscode.aliyun.numbers import provider_phone
    from flask_smscode.aliyun.receipts import (
        CHINA_TZ,
        DeliveryRecord,
        DeliveryReport,
        DeliveryStatus,
    )
    from flask_smscode.aliyun.sendbatch import MAX_PHONES_PER_BATCH_CALL
    from flask_smscode.aliyun.sender import AliyunSender
    from flask_smscode.aliyun.sendsms import MAX_PHONES_PER_CALL, SendSmsResponse
    from flask_smscode.aliyun.settings import AliyunSettings
    from flask_smscode.aliyun.transport import API_VERSION, Transport, silence_sdk_logs


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    target = module if module.startswith("..") else f".{module}"
    value = getattr(import_module(target, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "API_VERSION",
    "CHINA_TZ",
    "MAX_PHONES_PER_BATCH_CALL",
    "MAX_PHONES_PER_CALL",
    "PARAM_MISSING",
    "PROVIDER_ERROR",
    "REQUEST_FAILED",
    "AliyunInvalidArguments",
    "AliyunProviderRefused",
    "AliyunRequestFailed",
    "AliyunSender",
    "AliyunSettings",
    "AliyunSms",
    "AliyunSmsError",
    "BatchEntry",
    "DeliveryRecord",
    "DeliveryReport",
    "DeliveryStatus",
    "SendSmsResponse",
    "Transport",
    "provider_phone",
    "silence_sdk_logs",
]
