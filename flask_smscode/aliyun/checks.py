"""``flask smscode doctor``'s checks of an Alibaba Cloud sender, from its config view alone.

Why: an unapproved signature, a template of the wrong type or without ``${code}``, a wrong
AccessKey secret or a skewed clock all surface as a refused SendSms on the first real
login. Each check here asks what production will ask (the same endpoint, protocol and
signed RPC calls) and answers with a catalogue key and parameters, so the CLI can print it
in the operator's language; a check never holds the AccessKey secret, and the AccessKey id
only masked.

Checks, in dependency order: endpoint (HTTPS connect, or plain HTTP with a warning on a
loopback test endpoint), clock (local UTC against the provider's ``Date`` header; Alibaba
refuses timestamps off by more than 15 minutes), credentials (a signed ``QuerySmsSign``
call is accepted), signature (``QuerySmsSign``: exists and approved), each template
(``QuerySmsTemplate``: exists, approved, verification-code type, holds the configured
variable and no other), each international template (``SMSCODE_ALIYUN_INTL_TEMPLATE_CODE``:
the same, but of the international type 3, which Alibaba requires for numbers outside the
mainland). Reached through :meth:`AliyunSender.check` (the sender registry's ``check``).
"""

from __future__ import annotations

import http.client
import re
import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from flask_smscode.aliyun.client import AliyunSms
from flask_smscode.aliyun.errors import PROVIDER_ERROR, AliyunSmsError
from flask_smscode.aliyun.outcomes import Meaning, codes_meaning
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.base import FAIL, OK, SKIP, WARN, Check

CLOCK_WARN_SECONDS = 60.0  # NTP keeps clocks within a second: a minute means it is not running
CLOCK_FAIL_SECONDS = 900.0  # Alibaba refuses a Timestamp more than 15 minutes off
ENDPOINT_TIMEOUT_SECONDS = 5.0
TEMPLATE_TYPE_CODE = 0  # QuerySmsTemplate TemplateType: 0 verification code
TEMPLATE_TYPE_INTL = 3  # 3 international (numbers outside the mainland, HK/MO/TW too)
SIGN_STATUS = {0: "reviewing", 1: "approved", 2: "rejected", 10: "cancelled"}
# From the one table of Alibaba codes (aliyun/outcomes.py).
_KEY_ERRORS = codes_meaning(Meaning.ACCESS_KEY)
_SECRET_ERRORS = codes_meaning(Meaning.SIGNATURE_MISMATCH)
_PERMISSION_ERRORS = codes_meaning(Meaning.PERMISSION)
_SIGN_MISSING = codes_meaning(Meaning.SIGNATURE)
_TEMPLATE_MISSING = codes_meaning(Meaning.TEMPLATE)
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def mask_key_id(key_id: str) -> str:
    """At most the first four characters of an AccessKey id: enough to tell keys apart."""
    return key_id[:4] + "****" if len(key_id) >= 8 else "****"


# -- the provider -------------------------------------------------------------------------------
def provider_checks(config: Mapping[str, Any]) -> list[Check]:
    """Every check of one Alibaba Cloud sender, from its own config view, in order."""
    try:
        client = AliyunSms.from_config(config)
    except ConfigurationError as exc:
        return [Check("credentials", FAIL, "cli.doctor.config", {"reason": str(exc)})]
    endpoint, skew = _endpoint_check(client)
    checks = [endpoint, _clock_check(skew)]
    credentials, sign_answer = _credentials_check(client)
    checks.append(credentials)
    templates = _templates(client.settings.template_code)
    intl_templates = _templates(client.settings.intl_template_code)
    if credentials.status == FAIL:
        checks.append(Check("sign", SKIP, "cli.doctor.skipped"))
        checks += [
            Check("template", SKIP, "cli.doctor.skipped", subject=_subject(code, purposes))
            for code, purposes in templates.items()
        ]
        checks += [
            Check("intl_template", SKIP, "cli.doctor.skipped", subject=_subject(code, purposes))
            for code, purposes in intl_templates.items()
        ]
        return checks
    checks.append(_sign_check(client.sign_name, sign_answer))
    param = client.settings.template_param
    checks += [
        _template_check(client, code, purposes, param) for code, purposes in templates.items()
    ]
    if not intl_templates and client.settings.allows_international:
        # The sender refuses to start like this; say so here too, on the line it concerns.
        checks.append(
            Check(
                "intl_template",
                FAIL,
                "cli.doctor.intl_template.not_set",
                {"regions": _regions(client.settings.allowed_regions)},
                "cli.doctor.fix.intl_template_code",
            )
        )
    checks += [
        _template_check(client, code, purposes, param, international=True)
        for code, purposes in intl_templates.items()
    ]
    return checks


def _regions(regions: tuple[str, ...] | None) -> str:
    return "*" if regions is None else ", ".join(regions)


def _subject(code: str, purposes: list[str]) -> str:
    return f"{code} ({', '.join(purposes)})" if purposes else code


def _endpoint_check(client: AliyunSms) -> tuple[Check, float | None]:
    """Connect as the transport will (TLS verified for https); also return how far the local
    clock is ahead of the provider's (seconds), from the answer's ``Date`` header taken
    at the midpoint of the request."""
    secure = client.protocol == "https"
    parts = urlsplit(f"//{client.endpoint}")
    host = parts.hostname or client.endpoint
    port = parts.port or (443 if secure else 80)
    params = {"endpoint": f"{host}:{port}"}
    connection: http.client.HTTPConnection
    if secure:
        connection = http.client.HTTPSConnection(
            host, port, timeout=ENDPOINT_TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=ENDPOINT_TIMEOUT_SECONDS)
    started = time.time()
    try:
        connection.request("GET", "/", headers={"Accept": "application/json"})
        response = connection.getresponse()
        response.read()
        date = response.getheader("Date")
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "endpoint",
            FAIL,
            "cli.doctor.endpoint.untrusted",
            {**params, "reason": exc.verify_message or type(exc).__name__},
            "cli.doctor.fix.endpoint",
        ), None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return Check(
            "endpoint",
            FAIL,
            "cli.doctor.endpoint.unreachable",
            {**params, "reason": reason},
            "cli.doctor.fix.endpoint",
        ), None
    finally:
        connection.close()
    middle = (started + time.time()) / 2
    skew: float | None = None
    try:  # Date is truncated to the second: its true value is half a second later
        skew = middle - parsedate_to_datetime(date or "").timestamp() - 0.5
    except (TypeError, ValueError):
        skew = None
    if not secure:
        return Check(
            "endpoint", WARN, "cli.doctor.endpoint.http", params, "cli.doctor.fix.https"
        ), skew
    return Check("endpoint", OK, "cli.doctor.endpoint.ok", params), skew


def _clock_check(skew: float | None) -> Check:
    if skew is None:
        return Check("clock", SKIP, "cli.doctor.clock.unknown")
    params = {"seconds": round(abs(skew))}
    key = "cli.doctor.clock.ahead" if skew > 0 else "cli.doctor.clock.behind"
    if abs(skew) > CLOCK_FAIL_SECONDS:
        return Check("clock", FAIL, key, params, "cli.doctor.fix.clock")
    if abs(skew) > CLOCK_WARN_SECONDS:
        return Check("clock", WARN, key, params, "cli.doctor.fix.clock")
    return Check("clock", OK, "cli.doctor.clock.ok", params)


def _credentials_check(client: AliyunSms) -> tuple[Check, dict[str, Any] | None]:
    """One signed call (QuerySmsSign, reused by the signature check) tells whether Alibaba
    accepts the AccessKey pair."""
    key_id = {"key_id": mask_key_id(client._access_key_id)}
    try:
        answer = client.call("QuerySmsSign", {"SignName": client.sign_name or "-"})
    except AliyunSmsError as exc:
        code = exc.provider_code or ""
        if exc.code != PROVIDER_ERROR:
            return Check(
                "credentials",
                FAIL,
                "cli.doctor.credentials.no_answer",
                key_id,
                "cli.doctor.fix.endpoint",
                {"endpoint": client.endpoint},
            ), None
        if code in _KEY_ERRORS:
            return Check(
                "credentials",
                FAIL,
                "cli.doctor.credentials.unknown_key",
                {**key_id, "code": code},
                "cli.doctor.fix.key_id",
            ), None
        if code in _SECRET_ERRORS:
            return Check(
                "credentials",
                FAIL,
                "cli.doctor.credentials.wrong_secret",
                {**key_id, "code": code},
                "cli.doctor.fix.secret",
            ), None
        if code.startswith("InvalidTimeStamp"):
            return Check(
                "credentials",
                FAIL,
                "cli.doctor.credentials.timestamp",
                {**key_id, "code": code},
                "cli.doctor.fix.clock",
            ), None
        if code in _PERMISSION_ERRORS:
            return Check("credentials", OK, "cli.doctor.credentials.ok", key_id), {
                "Code": code,
                "RequestId": exc.request_id,
            }
        return Check(
            "credentials",
            FAIL,
            "cli.doctor.credentials.refused",
            {**key_id, "code": code or "-", "request_id": exc.request_id or "-"},
        ), None
    return Check("credentials", OK, "cli.doctor.credentials.ok", key_id), answer


def _sign_check(sign_name: str | None, answer: dict[str, Any] | None) -> Check:
    if not sign_name:
        return Check("sign", FAIL, "cli.doctor.sign.not_set", {}, "cli.doctor.fix.sign_name")
    params: dict[str, Any] = {"sign": sign_name}
    code = str((answer or {}).get("Code") or "")
    if code in _PERMISSION_ERRORS:
        return Check(
            "sign",
            WARN,
            "cli.doctor.no_permission",
            {"action": "QuerySmsSign", "code": code},
            "cli.doctor.fix.permission",
        )
    if code in _SIGN_MISSING:
        return Check(
            "sign",
            FAIL,
            "cli.doctor.sign.missing",
            {**params, "code": code},
            "cli.doctor.fix.sign_name",
        )
    if code != "OK" or answer is None:
        return Check(
            "sign",
            FAIL,
            "cli.doctor.refused",
            {
                "action": "QuerySmsSign",
                "code": code or "-",
                "request_id": (answer or {}).get("RequestId") or "-",
            },
        )
    status = _int(answer.get("SignStatus"))
    params["status"] = status
    params["reason"] = _one_line(answer.get("Reason"))
    if status == 1:
        return Check("sign", OK, "cli.doctor.sign.ok", params)
    if status == 0:
        return Check(
            "sign", FAIL, "cli.doctor.sign.reviewing", params, "cli.doctor.fix.wait_review"
        )
    if status == 2:
        return Check(
            "sign", FAIL, "cli.doctor.sign.rejected", params, "cli.doctor.fix.sign_rejected"
        )
    return Check("sign", FAIL, "cli.doctor.sign.unusable", params, "cli.doctor.fix.sign_rejected")


def _templates(setting: str | Mapping[str, str] | None) -> dict[str, list[str]]:
    """Template code -> the purposes it serves (empty: the one template for every purpose)."""
    if not setting:
        return {}
    if isinstance(setting, Mapping):
        grouped: dict[str, list[str]] = {}
        for purpose, code in setting.items():
            grouped.setdefault(str(code), []).append(str(purpose))
        return grouped
    return {str(setting): []}


def _template_check(
    client: AliyunSms, code: str, purposes: list[str], param: str, *, international: bool = False
) -> Check:
    """A code template (TemplateType 0), or with ``international`` one for numbers outside
    the mainland (TemplateType 3): both must be approved and carry the code variable."""
    subject = _subject(code, purposes)
    check = "intl_template" if international else "template"
    expected_type = TEMPLATE_TYPE_INTL if international else TEMPLATE_TYPE_CODE
    if international:
        ok_key, type_key = "cli.doctor.intl_template.ok", "cli.doctor.intl_template.type"
        fix_code, fix_type = (
            "cli.doctor.fix.intl_template_code",
            "cli.doctor.fix.intl_template_type",
        )
    else:
        ok_key, type_key = "cli.doctor.template.ok", "cli.doctor.template.type"
        fix_code, fix_type = "cli.doctor.fix.template_code", "cli.doctor.fix.template_type"
    params: dict[str, Any] = {"template": code, "variable": "${" + param + "}"}
    try:
        answer = client.call("QuerySmsTemplate", {"TemplateCode": code})
    except AliyunSmsError as exc:
        answer = {"Code": exc.provider_code or "REQUEST_FAILED", "RequestId": exc.request_id}
    result = str(answer.get("Code") or "")
    if result in _PERMISSION_ERRORS:
        return Check(
            check,
            WARN,
            "cli.doctor.no_permission",
            {"action": "QuerySmsTemplate", "code": result},
            "cli.doctor.fix.permission",
            subject=subject,
        )
    if result in _TEMPLATE_MISSING:
        return Check(
            check,
            FAIL,
            "cli.doctor.template.missing",
            {**params, "code": result},
            fix_code,
            subject=subject,
        )
    if result != "OK":
        return Check(
            check,
            FAIL,
            "cli.doctor.refused",
            {
                "action": "QuerySmsTemplate",
                "code": result or "-",
                "request_id": answer.get("RequestId") or "-",
            },
            subject=subject,
        )
    status = _int(answer.get("TemplateStatus"))
    kind = _int(answer.get("TemplateType"))
    content = str(answer.get("TemplateContent") or "")
    variables = list(dict.fromkeys(_VARIABLE.findall(content)))
    params.update(status=status, type=kind, reason=_one_line(answer.get("Reason")))
    if status == 0:
        return Check(
            check,
            FAIL,
            "cli.doctor.template.reviewing",
            params,
            "cli.doctor.fix.wait_review",
            subject=subject,
        )
    if status != 1:
        return Check(
            check,
            FAIL,
            "cli.doctor.template.rejected",
            params,
            "cli.doctor.fix.template_rejected",
            subject=subject,
        )
    if kind != expected_type:
        return Check(check, FAIL, type_key, params, fix_type, subject=subject)
    if param not in variables:
        return Check(
            check,
            FAIL,
            "cli.doctor.template.no_variable",
            {**params, "found": ", ".join("${" + v + "}" for v in variables) or "-"},
            "cli.doctor.fix.template_param",
            subject=subject,
        )
    extra = [v for v in variables if v != param]
    if extra:
        return Check(
            check,
            FAIL,
            "cli.doctor.template.extra",
            {**params, "extra": ", ".join("${" + v + "}" for v in extra)},
            "cli.doctor.fix.template_extra",
            subject=subject,
        )
    return Check(check, OK, ok_key, params, subject=subject)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _one_line(value: Any) -> str:
    """A provider remark, on one line and bounded (it is shown to the operator as given)."""
    text = " ".join(str(value or "").split())
    return text[:120] or "-"
