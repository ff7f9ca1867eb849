"""flask-smscode: SMS verification codes for Flask, sent through Alibaba Cloud SMS.

``app.register_blueprint(sms_bp)`` adds ``POST /sms/send`` and ``POST /sms/verify``;
``send_code``, ``verify_code`` and ``check_token`` are the same operations in Python.
"""

from __future__ import annotations

from .blueprint import sms_bp
from .client import AliyunSms, AliyunSmsError, SendSmsResponse
from .errors import (
    CodeExpired,
    ConfigurationError,
    InvalidCode,
    InvalidPhone,
    InvalidRequest,
    InvalidToken,
    ProviderError,
    RegionNotAllowed,
    SmsCodeError,
    StorageUnavailable,
    Throttled,
    TooManyAttempts,
)
from .phones import mask_phone, normalize_phone
from .senders import ConsoleSender, DeliveryUnconfirmed, Sender, SendReceipt
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
from .signals import code_sent, code_verified, verification_failed
from .tokens import VerifiedPhone

__all__ = [
    "AliyunSms",
    "AliyunSmsError",
    "CodeExpired",
    "ConfigurationError",
    "ConsoleSender",
    "DeliveryUnconfirmed",
    "InvalidCode",
    "InvalidPhone",
    "InvalidRequest",
    "InvalidToken",
    "ProviderError",
    "RegionNotAllowed",
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
    "get_service",
    "init_app",
    "mask_phone",
    "normalize_phone",
    "send_code",
    "sms_bp",
    "verification_failed",
    "verify_code",
]
