"""One SendSms call: arguments checked, values sent as strings, the answer typed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_smscode.aliyun.errors import (
    AliyunInvalidArguments,
    AliyunProviderRefused,
    AliyunSmsError,
)
from flask_smscode.aliyun.outcomes import Meaning, meaning_of
from flask_smscode.aliyun.transport import Transport

MAX_PHONES_PER_CALL = 1000  # SendSms accepts at most 1000 comma-separated numbers
# SmsUpExtendCode, the uplink extension code appended to the sending number so replies can be
# told apart: digits only, at most 7 (Alibaba's SendSms samples: "扩展码字段控制在7位或以下").
MAX_EXTEND_CODE_DIGITS = 7


@dataclass(frozen=True)
class SendSmsResponse:
    """Alibaba Cloud's answer to one SendSms call."""

    code: str
    message: str
    biz_id: str | None
    request_id: str | None
    out_id: str | None = None
    phone_numbers: tuple[str, ...] = field(default=(), repr=False)
    error: AliyunSmsError | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    def as_dict(self) -> dict[str, Any]:
        """The provider's field names: Code, Message, BizId, RequestId (plus OutId)."""
        return {
            "Code": self.code,
            "Message": self.message,
            "BizId": self.biz_id,
            "RequestId": self.request_id,
            "OutId": self.out_id,
        }


def send_sms(
    transport: Transport,
    phone_numbers: Sequence[str],
    template_code: str,
    params: Mapping[str, Any] | None = None,
    *,
    out_id: str | None = None,
    sign_name: str | None = None,
    sms_up_extend_code: str | None = None,
) -> SendSmsResponse:
    """One SendSms call to at most 1000 numbers, already in the provider's format.

    Raises :class:`~flask_smscode.errors.AliyunSmsError` unless Alibaba Cloud answered
    ``Code == "OK"`` (business errors arrive as HTTP 200 and raise nothing in the SDK).
    """
    sign = sign_name or transport.settings.sign_name
    if not phone_numbers:
        raise AliyunInvalidArguments("The phone list is empty")
    if len(phone_numbers) > MAX_PHONES_PER_CALL:
        raise AliyunInvalidArguments(
            f"SendSms takes at most {MAX_PHONES_PER_CALL} numbers per call"
        )
    if not sign:
        raise AliyunInvalidArguments(
            "No sign name (verifySign / SMSCODE_ALIYUN_SIGN_NAME) was given"
        )
    if not template_code:
        raise AliyunInvalidArguments("No template code was given")
    extend_code = check_extend_code(sms_up_extend_code)
    out_id = out_id or uuid.uuid4().hex
    # Alibaba refuses non-string values (isv.INVALID_JSON_PARAM).
    template_param = json.dumps(
        {str(k): as_text(v) for k, v in (params or {}).items()},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    answer = transport.call(
        "SendSms",
        {
            "PhoneNumbers": ",".join(phone_numbers),
            "SignName": sign,
            "TemplateCode": template_code,
            "TemplateParam": template_param,
            "OutId": out_id,
            "SmsUpExtendCode": extend_code,
        },
    )
    return sent_or_refused("SendSms", answer, phone_numbers, out_id)


def sent_or_refused(
    action: str, answer: Mapping[str, Any], phone_numbers: Sequence[str], out_id: str
) -> SendSmsResponse:
    """A send's answer (SendSms or SendBatchSms), or 46002 when its ``Code`` is not ``OK``:
    business errors arrive as HTTP 200 and the SDK raises nothing for them."""
    response = SendSmsResponse(
        code=str(answer.get("Code", "")),
        message=str(answer.get("Message", "")),
        biz_id=answer.get("BizId"),
        request_id=answer.get("RequestId"),
        out_id=out_id,
        phone_numbers=tuple(phone_numbers),
    )
    if not response.ok:
        raise AliyunProviderRefused(
            f"Alibaba Cloud answered {action} with {response.code or 'no code'}",
            provider_code=response.code or None,
            request_id=response.request_id,
            http_status=200,
            retry_after=flow_control_wait(response),
            out_id=out_id,
        )
    return response


def check_extend_code(value: object, name: str = "SmsUpExtendCode") -> str | None:
    """``value`` as Alibaba takes an uplink extension code (1-7 ASCII digits), ``None`` for
    none (``None`` or ``""``); anything else raises 46001 naming the parameter, never
    echoing the value."""
    if value is None or value == "":
        return None
    if (
        not isinstance(value, str)
        or not (value.isascii() and value.isdigit())
        or len(value) > MAX_EXTEND_CODE_DIGITS
    ):
        raise AliyunInvalidArguments(
            f"{name} must be 1 to {MAX_EXTEND_CODE_DIGITS} digits (the uplink extension code)"
        )
    return value


def as_text(value: Any) -> str:
    """A template value as the string Alibaba requires."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def flow_control_wait(response: SendSmsResponse) -> int | None:
    """Seconds to wait after isv.BUSINESS_LIMIT_CONTROL, from the window its message names."""
    if meaning_of(response.code) is not Meaning.FLOW_CONTROL:
        return None
    if "天" in response.message or "day" in response.message.lower():
        return 86400
    if "小时" in response.message or "hour" in response.message.lower():
        return 3600
    return 60
