"""flask-smscode: SMS verification codes for Flask, sent through Alibaba Cloud SMS.

``app.register_blueprint(sms_bp)`` adds ``POST /sms/send`` and ``POST /sms/verify``;
``send_code``, ``verify_code`` and ``check_token`` are the same operations in Python.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from flask_smscode.errors import (
    ChallengeRequired,
    CodeExpired,
    ConfigurationError,
    CrossSiteRequest,
    DeliveryUnconfirmed,
    FlaskSmsCodeError,
    IdempotencyKeyReused,
    InvalidCode,
    InvalidPhone,
    InvalidRequest,
    InvalidToken,
    ProviderError,
    ProviderUnavailable,
    RegionNotAllowed,
    RequestInProgress,
    SmsCodeError,
    StorageUnavailable,
    Throttled,
    TooManyAttempts,
)

# Every other public name is imported from its module on first use (PEP 562), so that
# `import flask_smscode` costs next to nothing over `import flask`: phonenumbers, limits and
# redis load with the first name that needs them, the Alibaba SDK with the first SendSms
# call. `from flask_smscode import sms_bp` keeps working (it goes through __getattr__).
_LAZY: dict[str, str] = {
    "__version__": "_version",  # importlib.metadata: a few ms, looked up on first use
    "AliyunInvalidArguments": "aliyun.errors",
    "AliyunProviderRefused": "aliyun.errors",
    "AliyunRequestFailed": "aliyun.errors",
    "AliyunSmsError": "aliyun.errors",
    "AliyunSender": "aliyun",
    "AliyunSettings": "aliyun",
    "AliyunSms": "aliyun",
    "BatchEntry": "aliyun",
    "ConsoleSender": "senders",
    "DeliveryRecord": "aliyun",
    "DeliveryReport": "aliyun",
    "DeliveryStatus": "aliyun",
    "Delivery": "core.deliveries",
    "SendReceipt": "senders",
    "SendResult": "core.results",
    "SendSmsResponse": "aliyun",
    "Sender": "senders",
    "SmsCode": "extension",
    "SmsCodeService": "core.service",
    "VerifiedPhone": "tokens",
    "VerifyResult": "core.results",
    "check_token": "extension",
    "code_sent": "signals",
    "code_verified": "signals",
    "consume_receipts": "cli.receipts",  # the message-queue consumer, for own workers
    "delivery_reported": "signals",
    "delivery_status": "extension",
    "get_service": "extension",
    "init_app": "extension",
    "mask_phone": "phones",
    "reply_received": "signals",
    "normalize_phone": "phones",
    "send_code": "extension",
    "sms_bp": "web.blueprint",
    "verification_failed": "signals",
    "verify_code": "extension",
}

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from flask_smscode._version import __version__ as __version__
    from flask_smscode.aliyun import (
        AliyunSender,
        AliyunSettings,
        AliyunSms,
        BatchEntry,
        DeliveryRecord,
        DeliveryReport,
        DeliveryStatus,
        SendSmsResponse,
    )
    from flask_smscode.aliyun.errors import (
        AliyunInvalidArguments,
        AliyunProviderRefused,
        AliyunRequestFailed,
        AliyunSmsError,
    )
    from flask_smscode.cli.receipts import consume_receipts
    from flask_smscode.core.deliveries import Delivery
    from flask_smscode.core.results import SendResult, VerifyResult
    from flask_smscode.core.service import SmsCodeService
    from flask_smscode.extension import (
        SmsCode,
        check_token,
        delivery_status,
        get_service,
        init_app,
        send_code,
        verify_code,
    )
    from flask_smscode.phones import mask_phone, normalize_phone
    from flask_smscode.senders import ConsoleSender, Sender, SendReceipt
    from flask_smscode.signals import (
        code_sent,
        code_verified,
        delivery_reported,
        reply_received,
        verification_failed,
    )
    from flask_smscode.tokens import VerifiedPhone
    from flask_smscode.web.blueprint import sms_bp


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AliyunInvalidArguments",
    "AliyunProviderRefused",
    "AliyunRequestFailed",
    "AliyunSender",
    "AliyunSettings",
    "AliyunSms",
    "AliyunSmsError",
    "BatchEntry",
    "ChallengeRequired",
    "CodeExpired",
    "ConfigurationError",
    "ConsoleSender",
    "CrossSiteRequest",
    "Delivery",
    "DeliveryRecord",
    "DeliveryReport",
    "DeliveryStatus",
    "DeliveryUnconfirmed",
    "FlaskSmsCodeError",
    "IdempotencyKeyReused",
    "InvalidCode",
    "InvalidPhone",
    "InvalidRequest",
    "InvalidToken",
    "ProviderError",
    "ProviderUnavailable",
    "RegionNotAllowed",
    "RequestInProgress",
    "SendReceipt",
    "SendResult",
    "SendSmsResponse",
    "Sender",
    "SmsCode",
    "SmsCodeError",
    "SmsCodeService",
    "StorageUnavailable",
    "Throttled",
    "TooManyAttempts",
    "VerifiedPhone",
    "VerifyResult",
    "check_token",
    "code_sent",
    "code_verified",
    "consume_receipts",
    "delivery_reported",
    "delivery_status",
    "get_service",
    "init_app",
    "mask_phone",
    "normalize_phone",
    "reply_received",
    "send_code",
    "sms_bp",
    "verification_failed",
    "verify_code",
]
