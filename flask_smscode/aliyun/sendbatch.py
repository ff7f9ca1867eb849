"""One SendBatchSms call: per-number signatures and template values, at most 100 numbers.

SendBatchSms takes parallel JSON arrays (``PhoneNumberJson``, ``SignNameJson``,
``TemplateParamJson``, optionally ``SmsUpExtendCodeJson``) and one ``TemplateCode``; they
are checked here to be of equal length and within the limit before anything leaves, so a
malformed call is a 46001 of ours, not a provider refusal after the fact.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence

from flask_smscode.aliyun.errors import AliyunInvalidArguments
from flask_smscode.aliyun.sendsms import (
    SendSmsResponse,
    as_text,
    check_extend_code,
    sent_or_refused,
)
from flask_smscode.aliyun.transport import Transport

MAX_PHONES_PER_BATCH_CALL = 100  # SendBatchSms: "单次调用最多支持 100 个手机号"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def send_batch_sms(
    transport: Transport,
    phone_numbers: Sequence[str],
    sign_names: Sequence[str],
    template_code: str,
    params: Sequence[Mapping[str, object]],
    *,
    extend_codes: Sequence[str | None] | None = None,
    out_id: str | None = None,
) -> SendSmsResponse:
    """One SendBatchSms call; the i-th number gets the i-th signature, values and extension
    code. Numbers are already in the provider's format. Raises
    :class:`~flask_smscode.errors.AliyunSmsError` unless Alibaba Cloud answered ``OK``.
    """
    count = len(phone_numbers)
    if not count:
        raise AliyunInvalidArguments("The phone list is empty")
    if count > MAX_PHONES_PER_BATCH_CALL:
        raise AliyunInvalidArguments(
            f"SendBatchSms takes at most {MAX_PHONES_PER_BATCH_CALL} numbers per call"
        )
    if (
        len(sign_names) != count
        or len(params) != count
        or (extend_codes is not None and len(extend_codes) != count)
    ):
        raise AliyunInvalidArguments(
            "SendBatchSms needs one sign name, one set of template "
            "values (and one SmsUpExtendCode, if any) per number"
        )
    if not template_code:
        raise AliyunInvalidArguments("No template code was given")
    if not all(sign_names):
        raise AliyunInvalidArguments("No sign name (SMSCODE_ALIYUN_SIGN_NAME) was given")
    codes = [check_extend_code(c, "SmsUpExtendCodeJson") for c in extend_codes or ()]
    if any(codes) and not all(codes):
        raise AliyunInvalidArguments(
            "SmsUpExtendCodeJson needs an extension code for every number of the call, or none"
        )
    out_id = out_id or uuid.uuid4().hex
    answer = transport.call(
        "SendBatchSms",
        {
            "PhoneNumberJson": _json(list(phone_numbers)),
            "SignNameJson": _json(list(sign_names)),
            "TemplateCode": template_code,
            # Alibaba refuses non-string values (isv.INVALID_JSON_PARAM).
            "TemplateParamJson": _json(
                [{str(k): as_text(v) for k, v in p.items()} for p in params]
            ),
            "SmsUpExtendCodeJson": _json(codes) if any(codes) else None,
            "OutId": out_id,
        },
    )
    return sent_or_refused("SendBatchSms", answer, phone_numbers, out_id)
