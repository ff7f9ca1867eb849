"""Compatibility: the Alibaba Cloud SMS client lives in the :mod:`flask_smscode.aliyun`
package now (one module per job). ``from flask_smscode.client import AliyunSms`` and the
other names below keep working; new code imports from ``flask_smscode``."""

from __future__ import annotations

from .aliyun.client import AliyunSms
from .aliyun.sendsms import MAX_PHONES_PER_CALL, SendSmsResponse
from .aliyun.transport import API_VERSION, silence_sdk_logs
from .errors import PARAM_MISSING, PROVIDER_ERROR, REQUEST_FAILED, AliyunSmsError

__all__ = [
    "API_VERSION",
    "MAX_PHONES_PER_CALL",
    "PARAM_MISSING",
    "PROVIDER_ERROR",
    "REQUEST_FAILED",
    "AliyunSms",
    "AliyunSmsError",
    "SendSmsResponse",
    "silence_sdk_logs",
]
