"""``SMSCODE_SENDER = "aliyun"``: one verification code to one phone through SendSms.

The outcome goes back explicitly: a :class:`~flask_smscode.SendReceipt` when Alibaba Cloud
accepted the message; otherwise an HTTP refusal (:class:`~flask_smscode.InvalidPhone`,
:class:`~flask_smscode.Throttled`, :class:`~flask_smscode.ProviderError`) or
:class:`~flask_smscode.DeliveryUnconfirmed` carrying the provider code, request id and
OutId itself — never chained to the client error, so no traceback holds provider text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_smscode.aliyun.client import AliyunSms
from flask_smscode.aliyun.errors import AliyunSmsError
from flask_smscode.aliyun.numbers import is_mainland, provider_phone
from flask_smscode.aliyun.outcomes import Meaning, meaning_of, provider_down
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.errors import (
    DeliveryUnconfirmed,
    InvalidPhone,
    ProviderError,
    ProviderUnavailable,
    SmsCodeError,
    Throttled,
)
from flask_smscode.senders.base import Check, SendReceipt


class AliyunSender:
    """Template per purpose, the code as its parameter (``SMSCODE_ALIYUN_TEMPLATE_PARAM``)."""

    name = "aliyun"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        purposes: Sequence[str] = (),
        settings: AliyunSettings | None = None,
    ) -> None:
        self.settings = settings or AliyunSettings.from_config(config or {})
        self.templates, self.default_template = self.settings.sender_templates(purposes)
        # Numbers outside the mainland (HK/MO/TW included) need an international template.
        self.intl_templates, self.default_intl_template = self.settings.sender_intl_templates(
            purposes
        )
        self.param = self.settings.template_param
        self.client = AliyunSms.from_settings(self.settings)

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> AliyunSender:
        """The registry's constructor (``SMSCODE_SENDER = "aliyun"``)."""
        return cls(config, purposes=purposes)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]:
        """``flask smscode doctor``'s checks of this sender's account (aliyun/checks.py)."""
        from flask_smscode.aliyun.checks import provider_checks

        return provider_checks(config)

    @property
    def send_seconds(self) -> float:
        """The longest one SendSms may wait for its answer (SMSCODE_ALIYUN_TIMEOUT_SECONDS)."""
        return self.settings.timeout

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        template = self._template(phone, purpose)
        failure: DeliveryUnconfirmed | SmsCodeError | None = None
        try:
            answer = self.client.send_sms(
                [provider_phone(phone)], template, {self.param: code}, out_id=out_id
            )
        except AliyunSmsError as exc:
            failure = self._refusal(exc, out_id)
        if failure is not None:
            raise failure  # outside the except block: nothing chained
        return SendReceipt(
            provider_code=answer.code,
            request_id=answer.request_id,
            biz_id=answer.biz_id,
            out_id=answer.out_id,
            sender=self.name,
        )

    def _template(self, phone: str, purpose: str) -> str:
        """The domestic template for a mainland number, the international one otherwise
        (when configured: without ``SMSCODE_ALIYUN_INTL_TEMPLATE_CODE`` the allowed regions
        are mainland only, checked at start-up)."""
        if not is_mainland(phone):
            intl = self.intl_templates.get(purpose) or self.default_intl_template
            if intl:
                return intl
        return str(self.templates.get(purpose) or self.default_template)

    def _refusal(self, exc: AliyunSmsError, out_id: str) -> DeliveryUnconfirmed | SmsCodeError:
        """The client's error as the service's outcome, with the provider's fields on it."""
        if exc.delivery_unknown:
            return DeliveryUnconfirmed(
                provider_code=exc.provider_code,
                request_id=exc.request_id,
                out_id=out_id,
                sender=self.name,
            )
        refusal: SmsCodeError
        meaning = meaning_of(exc.provider_code)  # aliyun/outcomes.py: the one table
        if meaning is Meaning.INVALID_PHONE:
            refusal = InvalidPhone(key="invalid_phone.provider")
        elif meaning is Meaning.FLOW_CONTROL:
            refusal = Throttled(key="throttled.provider", retry_after=exc.retry_after or 60)
        else:
            # The provider itself definitely failed: the next sender may try (failover.py).
            refusal = ProviderUnavailable() if provider_down(exc) else ProviderError()
        return refusal.with_provider(
            provider_code=exc.provider_code or f"client.{exc.code}",
            request_id=exc.request_id,
            out_id=out_id,
            sender=self.name,
        )
