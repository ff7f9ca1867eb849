"""``SMSCODE_SENDER = "pnvs"``: one verification code to one mainland number through Alibaba
Cloud PNVS (号码认证服务, product Dypnsapi, API 2017-05-25, action ``SendSmsVerifyCode``).

**Whose code.** The package's own. SendSmsVerifyCode's ``TemplateParam`` takes the code in
either of two ways (help.aliyun.com/zh/pnvs/developer-reference/api-dypnsapi-2017-05-25-
sendsmsverifycode): ``"##code##"``, for PNVS to generate one, "也可直接传入具体的验证码值,
直接下发至接收方" — or the code itself, delivered as given. CheckSmsVerifyCode's page says
what that costs: "{"code":"123456","min":"5"} 验证码是用户配置的不是 api 动态生成,阿里云接口
无法校验" — PNVS cannot verify a code it did not make, and it need not. So this sender
sends the code the service generated and already stored as a hash: verify stays local and
atomic in the package's store (one Lua script / one lock: the attempt counter, expiry,
single use and the verified-phone token are the same for every sender), and no provider
call sits on the verify path — a CheckSmsVerifyCode there would add a round trip (~50 ms)
to every verify and make logins fail while PNVS is down, and it would split one decision
(is this code right, how many tries are left) between two systems that can disagree.
``ReturnVerifyCode`` is therefore ``false``: no code comes back, none to keep out of logs.

**Parameters.** ``PhoneNumber`` the 11 national digits, ``CountryCode`` 86 (PNVS sends to
mainland numbers only; the settings refuse other regions), ``SignName`` / ``TemplateCode``
a system-provided pair (赠送签名 / 赠送模板), ``SchemeName`` when set, ``OutId`` the send's
out_id (PNVS's delivery report echoes it), ``TemplateParam`` ``{"code": <code>, "min":
<minutes>}`` (the system templates read "验证码${code}…${min}分钟内有效": ``min`` is
``SMSCODE_CODE_TTL_SECONDS`` in minutes, rounded up), ``ValidTime`` the same lifetime in
seconds and ``Interval`` ``SMSCODE_RESEND_INTERVAL_SECONDS``, so PNVS's own per-number
frequency control agrees with the package's cooldown instead of refusing a resend the
app allowed. ``CodeLength``, ``CodeType`` and ``DuplicatePolicy`` are not sent: they shape
codes PNVS generates and how its own check treats them, neither of which is used.

**Outcomes** come from the one table of PNVS codes (:mod:`.outcomes`): a
:class:`~flask_smscode.SendReceipt`, or :class:`~flask_smscode.InvalidPhone`,
:class:`~flask_smscode.Throttled` (``biz.FREQUENCY``, no failover),
:class:`~flask_smscode.errors.ProviderUnavailable` (account, permission, signature,
template, credentials: definite, the next sender may try), :class:`~flask_smscode.
ProviderError`, or :class:`~flask_smscode.DeliveryUnconfirmed` when the request left and no
answer came. Errors are raised outside ``except`` blocks and carry only codes and ids: the
code, the phone and the signed URL never reach an exception or a log line (the transport
logs nothing of its signed request).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunSmsError
from flask_smscode.aliyun.numbers import MAINLAND_CALLING_CODE, provider_phone
from flask_smscode.aliyun.outcomes import Meaning
from flask_smscode.aliyun.pnvs.outcomes import meaning_of, provider_down
from flask_smscode.aliyun.pnvs.settings import PnvsSettings
from flask_smscode.aliyun.transport import Transport
from flask_smscode.errors import (
    DeliveryUnconfirmed,
    InvalidPhone,
    ProviderError,
    ProviderUnavailable,
    SmsCodeError,
    Throttled,
)
from flask_smscode.senders.base import Check, SendReceipt

ACTION = "SendSmsVerifyCode"


class PnvsSender:
    """A system-provided template (赠送模板) per purpose, the package's code as its ``code``."""

    name = "pnvs"
    # PNVS sends to mainland numbers only ("目前也仅支持国内号码发送"): the registry keeps
    # every other number off this sender's routes (senders/registry.py, _check_reach).
    calling_codes = (MAINLAND_CALLING_CODE,)

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        purposes: Sequence[str] = (),
        settings: PnvsSettings | None = None,
    ) -> None:
        self.settings = settings or PnvsSettings.from_config(config or {})
        self.sign_name, self.templates, self.default_template = self.settings.sender_templates(
            purposes
        )
        self.transport = Transport(self.settings.transport)

    def __repr__(self) -> str:  # never show the secret
        return f"<PnvsSender endpoint={self.settings.endpoint!r} sign_name={self.sign_name!r}>"

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> PnvsSender:
        """The registry's constructor (``SMSCODE_SENDER = "pnvs"``)."""
        return cls(config, purposes=purposes)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]:
        """``flask smscode doctor``'s checks of this sender's account (pnvs/checks.py)."""
        from flask_smscode.aliyun.pnvs.checks import provider_checks

        return provider_checks(config)

    @property
    def send_seconds(self) -> float:
        """The longest one SendSmsVerifyCode may wait (SMSCODE_PNVS_TIMEOUT_SECONDS)."""
        return self.settings.timeout

    def params(self, phone: str, code: str, purpose: str, out_id: str) -> dict[str, str | None]:
        """The action's parameters (``None`` ones are left out by the transport)."""
        s = self.settings
        template = self.templates.get(purpose) or self.default_template
        values = {"code": code, "min": str(s.valid_minutes)}
        return {
            "PhoneNumber": provider_phone(phone),
            "CountryCode": MAINLAND_CALLING_CODE,
            "SignName": self.sign_name,
            "TemplateCode": str(template),
            "TemplateParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
            "SchemeName": s.scheme_name,
            "OutId": out_id,
            "ValidTime": str(s.code_ttl_seconds),
            "Interval": str(s.resend_interval_seconds),
            "ReturnVerifyCode": "false",
        }

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        failure: DeliveryUnconfirmed | SmsCodeError | None = None
        model: dict[str, Any] = {}
        request_id: str | None = None
        try:
            answer = self.transport.call(ACTION, self.params(phone, code, purpose, out_id))
            raw_model = answer.get("Model")
            model = raw_model if isinstance(raw_model, dict) else {}
            request_id = _text(answer.get("RequestId")) or _text(model.get("RequestId"))
            result = _text(answer.get("Code"))
            if result != "OK":
                # Business refusals arrive as HTTP 200 with a Code: the same path as 4xx.
                raise AliyunProviderRefused(
                    f"PNVS refused the {ACTION} call",
                    provider_code=result or "no_code",
                    request_id=request_id,
                    http_status=200,
                )
        except AliyunSmsError as exc:
            failure = self._refusal(exc, out_id)
        if failure is not None:
            raise failure  # outside the except block: nothing chained
        return SendReceipt(
            provider_code="OK",
            request_id=request_id,
            biz_id=_text(model.get("BizId")),
            out_id=_text(model.get("OutId")) or out_id,
            sender=self.name,
        )

    def _refusal(self, exc: AliyunSmsError, out_id: str) -> DeliveryUnconfirmed | SmsCodeError:
        """The transport's error as the service's outcome, with the provider's fields on it."""
        if exc.delivery_unknown:
            return DeliveryUnconfirmed(
                provider_code=exc.provider_code,
                request_id=exc.request_id,
                out_id=out_id,
                sender=self.name,
            )
        refusal: SmsCodeError
        meaning = meaning_of(exc.provider_code)  # pnvs/outcomes.py: the one table
        if meaning is Meaning.INVALID_PHONE:
            refusal = InvalidPhone(key="invalid_phone.provider")
        elif meaning is Meaning.FLOW_CONTROL:
            # PNVS says neither which window nor how long: its Interval is the cooldown.
            refusal = Throttled(
                key="throttled.provider", retry_after=self.settings.resend_interval_seconds
            )
        else:
            refusal = ProviderUnavailable() if provider_down(exc) else ProviderError()
        return refusal.with_provider(
            provider_code=exc.provider_code or f"client.{exc.code}",
            request_id=exc.request_id,
            out_id=out_id,
            sender=self.name,
        )


def _text(value: Any) -> str | None:
    """A provider field as text, ``None`` when absent or empty."""
    return str(value) if value not in (None, "") else None
