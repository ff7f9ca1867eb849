"""Sends codes through Alibaba Cloud SMS with the package's one SendSms client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..client import AliyunSms, AliyunSmsError
from ..config import get_setting
from ..errors import ConfigurationError, InvalidPhone, ProviderError, Throttled
from ..phones import provider_phone
from .base import DeliveryUnconfirmed, SendReceipt

# SendSms answers that mean "this number cannot receive": the user typed a bad number.
_ILLEGAL_PHONE = {"isv.MOBILE_NUMBER_ILLEGAL"}
# Flow control: Alibaba's per-number 1/min, 5/h, 10/day (and the day/month account caps
# are plain provider errors, since retrying soon will not help the user).
_FLOW_CONTROL = {"isv.BUSINESS_LIMIT_CONTROL"}


class AliyunSender:
    """``SMSCODE_SENDER = "aliyun"``: template per purpose, the code as its parameter."""

    def __init__(self, config: Mapping[str, Any], *, purposes: Sequence[str] = ()) -> None:
        self.client = AliyunSms.from_config(config)
        if not self.client.sign_name:
            raise ConfigurationError("SMSCODE_ALIYUN_SIGN_NAME must be set for the aliyun "
                                     "sender (the 签名 approved in the SMS console).")
        templates = get_setting(config, "SMSCODE_ALIYUN_TEMPLATE_CODE")
        if not templates:
            raise ConfigurationError("SMSCODE_ALIYUN_TEMPLATE_CODE must be set for the aliyun "
                                     "sender (one template code, or a dict purpose -> code).")
        if isinstance(templates, Mapping):
            missing = [p for p in purposes if not templates.get(p)]
            if missing:
                raise ConfigurationError("SMSCODE_ALIYUN_TEMPLATE_CODE has no template for "
                                         "purpose(s): " + ", ".join(missing))
            self.templates = {str(k): str(v) for k, v in templates.items()}
            self.default_template = None
        else:
            self.templates = {}
            self.default_template = str(templates)
        self.param = str(get_setting(config, "SMSCODE_ALIYUN_TEMPLATE_PARAM"))

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        template = self.templates.get(purpose) or self.default_template
        try:
            answer = self.client.send_sms([provider_phone(phone)], str(template),
                                          {self.param: code}, out_id=out_id)
        except AliyunSmsError as exc:
            if exc.delivery_unknown:
                raise DeliveryUnconfirmed(provider_code=exc.provider_code,
                                          request_id=exc.request_id) from None
            if exc.provider_code in _ILLEGAL_PHONE:
                raise InvalidPhone(key="invalid_phone.provider") from exc
            if exc.provider_code in _FLOW_CONTROL:
                raise Throttled(key="throttled.provider",
                                retry_after=exc.retry_after or 60) from exc
            raise ProviderError(provider_code=exc.provider_code or f"client.{exc.code}",
                                request_id=exc.request_id) from exc
        return SendReceipt(provider_code=answer.code, request_id=answer.request_id,
                           biz_id=answer.biz_id)
