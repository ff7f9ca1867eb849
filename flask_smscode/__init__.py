"""flask-smscode: SMS verification codes for Flask, sent through Alibaba Cloud SMS.

``app.register_blueprint(sms_bp)`` adds ``POST /sms/send`` and ``POST /sms/verify``;
``send_code``, ``verify_code`` and ``check_token`` are the same operations in Python.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__
from .errors import (
    AliyunInvalidArguments,
    AliyunProviderRefused,
    AliyunRequestFailed,
    AliyunSmsError,
    ChallengeRequired,
    CodeExpired,
    ConfigurationError,
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
    "AliyunSender": "aliyun",
    "AliyunSettings": "aliyun",
    "AliyunSms": "aliyun",
    "BatchEntry": "aliyun",
    "ConsoleSender": "senders",
    "DeliveryRecord": "aliyun",
    "DeliveryReport": "aliyun",
    "DeliveryStatus": "aliyun",
    "Delivery": "aliyun.reports",
    "SendReceipt": "senders",
    "SendResult": "service",
    "SendSmsResponse": "aliyun",
    "Sender": "senders",
    "SmsCode": "service",
    "SmsCodeService": "service",
    "VerifiedPhone": "tokens",
    "VerifyResult": "service",
    "check_token": "service",
    "code_sent": "signals",
    "code_verified": "signals",
    "delivery_reported": "signals",
    "delivery_status": "aliyun.reports",
    "get_service": "service",
    "init_app": "service",
    "mask_phone": "phones",
    "normalize_phone": "phones",
    "send_code": "service",
    "sms_bp": "blueprint",
    "verification_failed": "signals",
    "verify_code": "service",
}

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from .aliyun import (
        AliyunSender,
        AliyunSettings,
        AliyunSms,
        BatchEntry,
        DeliveryRecord,
        DeliveryReport,
        DeliveryStatus,
        SendSmsResponse,
    )
    from .aliyun.reports import Delivery, delivery_status
    from .blueprint import sms_bp
    from .phones import mask_phone, normalize_phone
    from .senders import ConsoleSender, Sender, SendReceipt
    from .service import (
        SendResult,
        SmsCode,
        SmsCodeService,
        VerifyResult,
        check_token,
        get_service,
        init_app,
        send_code,
        verify_code,
    )
    from .signals import code_sent, code_verified, delivery_reported, verification_failed
    from .tokens import VerifiedPhone


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
    "delivery_reported",
    "delivery_status",
    "get_service",
    "init_app",
    "mask_phone",
    "normalize_phone",
    "send_code",
    "sms_bp",
    "verification_failed",
    "verify_code",
]
