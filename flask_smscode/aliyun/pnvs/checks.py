"""``flask smscode doctor``'s checks of a pnvs sender, from its config view alone.

What can be asked of PNVS, and what cannot:

- endpoint and clock: the same as the Dysmsapi checks (:mod:`flask_smscode.aliyun.checks`,
  reused): a TLS connection to ``SMSCODE_PNVS_ENDPOINT`` and the provider's ``Date``;
- credentials, the product and the RAM permission: one signed **CheckSmsVerifyCode** call
  for a fixed test number. It is the cheapest authenticated Dypnsapi action there is: it
  sends nothing, costs nothing ("核验服务免费") and answers ``UNKNOWN`` for a code PNVS
  never sent; an unknown AccessKey, a wrong secret, PNVS not activated (开通) or a RAM
  policy without ``dypns:*`` each answer with their own code, read from the one table
  (:mod:`.outcomes`);
- the signature and the template: Dypnsapi has **no query action** for the system-provided
  signatures and templates (赠送签名 / 赠送模板; QuerySmsSign and QuerySmsTemplate are
  Dysmsapi's, for one's own). Doctor checks they are set (the sender refuses to start
  without them) and says that their values can only be compared with the console's
  赠送签名配置 / 赠送模板配置 pages; a wrong one shows on the first send as
  ``isv.SMS_SIGN_ILLEGAL`` / ``isv.SMS_TEMPLATE_ILLEGAL`` (502, failover may move on).

Every line is a catalogue key with parameters (zh and en), never the secret, the AccessKey
id only masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask_smscode.aliyun.checks import _clock_check, _endpoint_check, mask_key_id
from flask_smscode.aliyun.client import AliyunSms
from flask_smscode.aliyun.errors import PROVIDER_ERROR, AliyunSmsError
from flask_smscode.aliyun.outcomes import Meaning
from flask_smscode.aliyun.pnvs.outcomes import codes_meaning
from flask_smscode.aliyun.pnvs.settings import PnvsSettings
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.base import FAIL, OK, WARN, Check

CHECK_ACTION = "CheckSmsVerifyCode"
CHECK_PHONE = "13800000000"  # never sent to: the check only asks about a code
CHECK_CODE = "0000"
_KEY_ERRORS = codes_meaning(Meaning.ACCESS_KEY)
_SECRET_ERRORS = codes_meaning(Meaning.SIGNATURE_MISMATCH)
_PERMISSION_ERRORS = codes_meaning(Meaning.PERMISSION)
_ACCOUNT_ERRORS = codes_meaning(Meaning.ACCOUNT)


def provider_checks(config: Mapping[str, Any]) -> list[Check]:
    """Every check of one pnvs sender, from its own config view, in order."""
    try:
        settings = PnvsSettings.from_config(config)
    except ConfigurationError as exc:
        return [Check("credentials", FAIL, "cli.doctor.config", {"reason": str(exc)})]
    client = AliyunSms(settings=settings.transport)  # the endpoint check's view of it
    endpoint, skew = _endpoint_check(client)
    if endpoint.fix_key == "cli.doctor.fix.endpoint":
        endpoint = replace(endpoint, fix_key="cli.doctor.fix.pnvs_endpoint")
    elif endpoint.fix_key == "cli.doctor.fix.https":
        endpoint = replace(endpoint, fix_key="cli.doctor.fix.pnvs_https")
    checks = [endpoint, _clock_check(skew), _credentials_check(client, settings)]
    checks.append(_sign_check(settings))
    checks += _template_checks(settings)
    return checks


def _credentials_check(client: AliyunSms, settings: PnvsSettings) -> Check:
    key_id = {"key_id": mask_key_id(client._access_key_id)}
    try:
        answer = client.call(
            CHECK_ACTION,
            {
                "PhoneNumber": CHECK_PHONE,
                "VerifyCode": CHECK_CODE,
                "SchemeName": settings.scheme_name,
            },
        )
    except AliyunSmsError as exc:
        if exc.code != PROVIDER_ERROR:
            return Check(
                "credentials",
                FAIL,
                "cli.doctor.credentials.no_answer",
                key_id,
                "cli.doctor.fix.pnvs_endpoint",
            )
        answer = {"Code": exc.provider_code or "", "RequestId": exc.request_id}
    code = str(answer.get("Code") or "")
    if code == "OK":
        return Check("credentials", OK, "cli.doctor.pnvs.credentials.ok", key_id)
    params = {**key_id, "code": code or "-"}
    if code in _KEY_ERRORS:
        return Check(
            "credentials",
            FAIL,
            "cli.doctor.credentials.unknown_key",
            params,
            "cli.doctor.fix.key_id",
        )
    if code in _SECRET_ERRORS:
        return Check(
            "credentials",
            FAIL,
            "cli.doctor.credentials.wrong_secret",
            params,
            "cli.doctor.fix.secret",
        )
    if code.startswith("InvalidTimeStamp"):
        return Check(
            "credentials", FAIL, "cli.doctor.credentials.timestamp", params, "cli.doctor.fix.clock"
        )
    if code in _PERMISSION_ERRORS:
        # The key is genuine (the gateway checked its signature) but may not call PNVS.
        return Check(
            "credentials",
            WARN,
            "cli.doctor.no_permission",
            {"action": CHECK_ACTION, "code": code},
            "cli.doctor.fix.pnvs_permission",
        )
    if code in _ACCOUNT_ERRORS:
        return Check(
            "credentials",
            FAIL,
            "cli.doctor.pnvs.not_subscribed",
            params,
            "cli.doctor.fix.pnvs_subscribe",
        )
    return Check(
        "credentials",
        FAIL,
        "cli.doctor.credentials.refused",
        {**params, "request_id": answer.get("RequestId") or "-"},
    )


def _sign_check(settings: PnvsSettings) -> Check:
    if not settings.sign_name:
        return Check(
            "sign", FAIL, "cli.doctor.pnvs.sign.not_set", {}, "cli.doctor.fix.pnvs_sign_name"
        )
    return Check("sign", OK, "cli.doctor.pnvs.sign.set", {"sign": settings.sign_name})


def _template_checks(settings: PnvsSettings) -> list[Check]:
    setting = settings.template_code
    if not setting:
        return [
            Check(
                "template",
                FAIL,
                "cli.doctor.pnvs.template.not_set",
                {},
                "cli.doctor.fix.pnvs_template_code",
            )
        ]
    grouped: dict[str, list[str]] = {}
    if isinstance(setting, Mapping):
        for purpose, code in setting.items():
            grouped.setdefault(str(code), []).append(str(purpose))
    else:
        grouped[str(setting)] = []
    return [
        Check(
            "template",
            OK,
            "cli.doctor.pnvs.template.set",
            {"template": code},
            subject=f"{code} ({', '.join(purposes)})" if purposes else code,
        )
        for code, purposes in grouped.items()
    ]
