"""``SMSCODE_SENDER = "tencent"``: one verification code to one phone through SendSms.

One number per request, so the answer's one ``SendStatus`` is that number's outcome: it is
classified with the request-level ``Error`` in the one table (``tencent/outcomes.py``). The
send's ``out_id`` goes out as ``SessionContext``, which Tencent echoes in the status callback
(``ext``), so the delivery report finds its send; Tencent's ``SerialNo`` is the receipt's
``biz_id`` (the callback's ``sid``), the fallback match.

Template parameters are positional: ``{1}`` is the code, and with
``SMSCODE_TENCENT_TEMPLATE_MINUTES`` ``{2}`` is the code's lifetime in whole minutes
(``SMSCODE_CODE_TTL_SECONDS`` rounded up), as Tencent's stock verification template
("... {1} ... {2} 分钟内有效") expects. Mainland numbers carry ``SignName``; numbers outside
the mainland (HK/MO/TW included) use ``SMSCODE_TENCENT_INTL_TEMPLATE_ID`` and no signature.

The outcome goes back explicitly: a :class:`~flask_smscode.SendReceipt`, or
:class:`~flask_smscode.InvalidPhone`, :class:`~flask_smscode.Throttled`,
:class:`~flask_smscode.ProviderUnavailable` (definite: failover may move on),
:class:`~flask_smscode.ProviderError` or :class:`~flask_smscode.DeliveryUnconfirmed` — raised
outside ``except`` blocks, never chained to the SDK's exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from flask_smscode.errors import (
    DeliveryUnconfirmed,
    InvalidPhone,
    ProviderError,
    ProviderUnavailable,
    SmsCodeError,
    Throttled,
)
from flask_smscode.senders.base import Check, SendReceipt
from flask_smscode.tencent.errors import TencentSmsError
from flask_smscode.tencent.outcomes import OK_CODE, Failover, Meaning, row_of
from flask_smscode.tencent.settings import TencentSettings
from flask_smscode.tencent.transport import Transport

MAINLAND_CALLING_CODE = "86"


def is_mainland(e164: str) -> bool:
    """Whether Tencent treats the number as domestic (国内短信)."""
    return e164.lstrip("+").startswith(MAINLAND_CALLING_CODE)


class TencentSender:
    """A template per purpose (or one for all), the code as ``{1}``."""

    name: ClassVar[str] = "tencent"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        purposes: Sequence[str] = (),
        settings: TencentSettings | None = None,
    ) -> None:
        self.settings = settings or TencentSettings.from_config(config or {})
        (
            self.templates,
            self.default_template,
            self.intl_templates,
            self.default_intl_template,
        ) = self.settings.sender_templates(purposes)
        self.transport = Transport(self.settings)

    def __repr__(self) -> str:  # never the credentials
        return f"<TencentSender endpoint={self.settings.endpoint!r}>"

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> TencentSender:
        """The registry's constructor (``SMSCODE_SENDER = "tencent"``)."""
        return cls(config, purposes=purposes)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]:
        """``flask smscode doctor``'s checks of this sender's account (tencent/checks.py)."""
        from flask_smscode.tencent.checks import provider_checks

        return provider_checks(config)

    @property
    def send_seconds(self) -> float:
        """The longest one SendSms may wait (SMSCODE_TENCENT_TIMEOUT_SECONDS)."""
        return self.settings.timeout

    def params(self, code: str) -> list[str]:
        """The positional template parameters: ``{1}`` the code, ``{2}`` the minutes."""
        if self.settings.template_minutes:
            return [code, str(self.settings.code_minutes)]
        return [code]

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        mainland = is_mainland(phone)
        template = self._template(mainland, purpose)
        failure: DeliveryUnconfirmed | SmsCodeError | None = None
        status = None
        try:
            status = self.transport.send_sms(
                phone,
                template,
                self.params(code),
                session_context=out_id,
                sign_name=self.settings.sign_name if mainland else None,
            )
        except TencentSmsError as exc:
            failure = self._refusal(exc, out_id)
        if failure is None and status is not None and status.code != OK_CODE:
            failure = self._classified(status.code, status.request_id, status.serial_no, out_id)
        if failure is not None:
            raise failure  # outside the except block: nothing chained
        assert status is not None
        return SendReceipt(
            provider_code=status.code,
            request_id=status.request_id,
            biz_id=status.serial_no,
            out_id=out_id,
            sender=self.name,
        )

    def _template(self, mainland: bool, purpose: str) -> str:
        """The domestic template for a mainland number, the international one otherwise
        (when configured: without one the allowed regions are mainland only)."""
        if not mainland:
            intl = self.intl_templates.get(purpose) or self.default_intl_template
            if intl:
                return intl
        return str(self.templates.get(purpose) or self.default_template)

    def _refusal(self, exc: TencentSmsError, out_id: str) -> DeliveryUnconfirmed | SmsCodeError:
        """A request that failed as a whole: no answer, or Tencent's ``Error``."""
        if exc.provider_code is None:
            if exc.not_sent:  # the connection never opened: nothing went out
                return ProviderUnavailable().with_provider(
                    provider_code="client.not_sent", out_id=out_id, sender=self.name
                )
            return DeliveryUnconfirmed(
                provider_code=None, request_id=exc.request_id, out_id=out_id, sender=self.name
            )
        return self._classified(exc.provider_code, exc.request_id, None, out_id)

    def _classified(
        self, provider_code: str, request_id: str | None, serial_no: str | None, out_id: str
    ) -> DeliveryUnconfirmed | SmsCodeError:
        """One Tencent code as the service's outcome (tencent/outcomes.py: the one table)."""
        row = row_of(provider_code)
        if row.meaning is Meaning.UNCONFIRMED:
            return DeliveryUnconfirmed(
                provider_code=provider_code,
                request_id=request_id,
                out_id=out_id,
                sender=self.name,
            )
        refusal: SmsCodeError
        if row.meaning is Meaning.INVALID_PHONE:
            refusal = InvalidPhone(key="invalid_phone.provider")
        elif row.meaning is Meaning.FLOW_CONTROL:
            refusal = Throttled(key="throttled.provider", retry_after=row.retry_after or 60)
        elif row.failover is Failover.ALWAYS:
            refusal = ProviderUnavailable()
        else:
            refusal = ProviderError()
        return refusal.with_provider(
            provider_code=provider_code,
            request_id=request_id,
            biz_id=serial_no,
            out_id=out_id,
            sender=self.name,
        )
