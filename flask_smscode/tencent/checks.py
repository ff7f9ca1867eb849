"""``flask smscode doctor``'s checks of a Tencent Cloud sender, from its config view alone.

Why: a wrong SecretKey, a skewed clock, a signature under review or a template that is not
yet in effect all surface as a refused SendSms on the first real login. Each check asks
Tencent's own API what production will meet (the same endpoint, protocol and TC3-signed
calls, through the SDK) and answers with a catalogue key and parameters, so the CLI prints
it in the operator's language; no check holds the SecretKey, and the SecretId only masked.

Checks, in dependency order: endpoint (a plain-HTTP endpoint is a warning: loopback tests
only), credentials (``DescribeSmsSignList``, the cheapest signed call, reused by the
signature check), signature (that list: exists; StatusCode 0 approved, 1 under review,
-1 rejected), each template and each international template (``DescribeSmsTemplateList``:
exists as that kind; StatusCode 0 approved, 1 under review, 2 approved but not yet
effective, -1 rejected; its ``{n}`` parameters are exactly what the sender fills: ``{1}``,
and ``{2}`` with ``SMSCODE_TENCENT_TEMPLATE_MINUTES``). Error codes are read through the one
table (``tencent/outcomes.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.base import FAIL, OK, SKIP, WARN, Check
from flask_smscode.tencent.errors import TencentSmsError
from flask_smscode.tencent.outcomes import Meaning, meaning_of
from flask_smscode.tencent.settings import TencentSettings
from flask_smscode.tencent.transport import Transport

_PLACEHOLDER = re.compile(r"\{(\d+)\}")
SIGN_APPROVED, SIGN_REVIEWING = 0, 1
TEMPLATE_APPROVED = 0
_K = "cli.doctor.tencent."


def mask_secret_id(secret_id: str) -> str:
    """At most the first six characters of a SecretId (``AKIDxx****``)."""
    return secret_id[:6] + "****" if len(secret_id) >= 12 else "****"


def provider_checks(config: Mapping[str, Any]) -> list[Check]:
    """Every check of one Tencent Cloud sender, from its own config view, in order."""
    try:
        settings = TencentSettings.from_config(config)
    except ConfigurationError as exc:
        return [Check("credentials", FAIL, "cli.doctor.config", {"reason": str(exc)})]
    transport = Transport(settings)
    checks = [_endpoint_check(settings)]
    credentials, signs = _credentials_check(settings, transport)
    checks.append(credentials)
    templates = _templates(settings.template_id)
    intl = _templates(settings.intl_template_id)
    if credentials.status == FAIL:
        checks.append(Check("sign", SKIP, "cli.doctor.skipped"))
        checks += [
            Check(kind, SKIP, "cli.doctor.skipped", subject=_subject(t, p))
            for kind, group in (("template", templates), ("intl_template", intl))
            for t, p in group.items()
        ]
        return checks
    checks.append(_sign_check(settings.sign_name, signs))
    params = "{1}, {2}" if settings.template_minutes else "{1}"
    checks += _template_checks(transport, templates, params, international=False)
    if not intl and settings.allows_international:
        regions = "*" if settings.allowed_regions is None else ", ".join(settings.allowed_regions)
        checks.append(
            Check(
                "intl_template",
                FAIL,
                _K + "intl_template.not_set",
                {"regions": regions},
                _K + "fix.intl_template_id",
            )
        )
    checks += _template_checks(transport, intl, params, international=True)
    return checks


def _subject(template: str, purposes: list[str]) -> str:
    return f"{template} ({', '.join(purposes)})" if purposes else template


def _templates(setting: str | Mapping[str, str] | None) -> dict[str, list[str]]:
    """Template id -> the purposes it serves (empty: the one template for every purpose)."""
    if not setting:
        return {}
    if isinstance(setting, Mapping):
        grouped: dict[str, list[str]] = {}
        for purpose, template in setting.items():
            grouped.setdefault(str(template), []).append(str(purpose))
        return grouped
    return {str(setting): []}


def _endpoint_check(settings: TencentSettings) -> Check:
    params = {"endpoint": settings.endpoint}
    if settings.protocol != "https":
        return Check("endpoint", WARN, "cli.doctor.endpoint.http", params)
    return Check("endpoint", OK, "cli.doctor.endpoint.ok", params)


def _credentials_check(
    settings: TencentSettings, transport: Transport
) -> tuple[Check, list[dict[str, Any]] | None]:
    """One signed DescribeSmsSignList call (its answer is the signature check's too)."""
    who = {"secret_id": mask_secret_id(settings.secret_id)}
    try:
        signs = transport.describe_signs()
    except TencentSmsError as exc:
        code = exc.provider_code
        if code is None:
            return Check(
                "credentials",
                FAIL,
                _K + "credentials.no_answer",
                {**who, "endpoint": settings.endpoint},
                _K + "fix.endpoint",
            ), None
        meaning = meaning_of(code)
        if meaning is Meaning.PERMISSION:  # the key works; it may not list signatures
            return Check("credentials", OK, _K + "credentials.ok", who), None
        failures = {
            Meaning.SECRET_ID: ("credentials.unknown_id", _K + "fix.secret_id"),
            Meaning.SIGNATURE_MISMATCH: ("credentials.wrong_key", _K + "fix.secret_key"),
            Meaning.CLOCK: ("credentials.clock", "cli.doctor.fix.clock"),
        }
        key, fix = failures.get(meaning, ("credentials.refused", None))
        return Check(
            "credentials",
            FAIL,
            _K + key,
            {**who, "code": code, "request_id": exc.request_id or "-"},
            fix,
        ), None
    return Check("credentials", OK, _K + "credentials.ok", who), signs


def _sign_check(sign_name: str | None, signs: list[dict[str, Any]] | None) -> Check:
    if not sign_name:
        return Check("sign", FAIL, _K + "sign.not_set", {}, _K + "fix.sign_name")
    params: dict[str, Any] = {"sign": sign_name}
    if signs is None:
        return Check(
            "sign",
            WARN,
            _K + "no_permission",
            {"action": "DescribeSmsSignList", "code": "UnauthorizedOperation"},
            _K + "fix.permission",
        )
    found = [s for s in signs if s.get("SignName") == sign_name]
    if not found:
        return Check("sign", FAIL, _K + "sign.missing", params, _K + "fix.sign_name")
    status = found[0].get("StatusCode")
    params.update(status=status, reason=_one_line(found[0].get("ReviewReply")))
    if status == SIGN_APPROVED:
        return Check("sign", OK, _K + "sign.ok", params)
    if status == SIGN_REVIEWING:
        return Check("sign", FAIL, _K + "sign.pending", params, "cli.doctor.fix.wait_review")
    return Check("sign", FAIL, _K + "sign.rejected", params, "cli.doctor.fix.sign_rejected")


def _template_checks(
    transport: Transport, templates: dict[str, list[str]], params: str, *, international: bool
) -> list[Check]:
    """One line per template id: asked for all at once (DescribeSmsTemplateList)."""
    if not templates:
        return []
    check = "intl_template" if international else "template"
    fix_id = _K + ("fix.intl_template_id" if international else "fix.template_id")
    try:
        found = {
            str(t.get("TemplateId")): t
            for t in transport.describe_templates(list(templates), international)
        }
    except TencentSmsError as exc:
        code = exc.provider_code or "-"
        no_permission = meaning_of(exc.provider_code) is Meaning.PERMISSION
        return [
            Check(
                check,
                WARN if no_permission else FAIL,
                _K + ("no_permission" if no_permission else "refused"),
                {
                    "action": "DescribeSmsTemplateList",
                    "code": code,
                    "request_id": exc.request_id or "-",
                },
                _K + "fix.permission" if no_permission else None,
                subject=_subject(t, p),
            )
            for t, p in templates.items()
        ]
    lines = []
    for template, purposes in templates.items():
        subject = _subject(template, purposes)
        values: dict[str, Any] = {"template": template, "params": params}
        row = found.get(template)
        if row is None:
            lines.append(
                Check(check, FAIL, _K + f"{check}.missing", values, fix_id, subject=subject)
            )
            continue
        status = row.get("StatusCode")
        values.update(status=status, reason=_one_line(row.get("ReviewReply")))
        if status == TEMPLATE_APPROVED:
            wanted = sorted({int(n) for n in _PLACEHOLDER.findall(str(row.get("TemplateContent")))})
            have = "{1}, {2}" if params == "{1}, {2}" else "{1}"
            if ", ".join(f"{{{n}}}" for n in wanted) != have:
                found_text = ", ".join(f"{{{n}}}" for n in wanted) or "-"
                lines.append(
                    Check(
                        check,
                        FAIL,
                        _K + "template.params",
                        {**values, "found": found_text},
                        _K + "fix.template_params",
                        subject=subject,
                    )
                )
            else:
                lines.append(Check(check, OK, _K + "template.ok", values, subject=subject))
        elif status == -1:
            lines.append(
                Check(
                    check,
                    FAIL,
                    _K + "template.rejected",
                    values,
                    "cli.doctor.fix.template_rejected",
                    subject=subject,
                )
            )
        else:  # 1 under review, 2 approved but not yet effective
            lines.append(
                Check(
                    check,
                    FAIL,
                    _K + "template.pending",
                    values,
                    "cli.doctor.fix.wait_review",
                    subject=subject,
                )
            )
    return lines


def _one_line(value: Any) -> str:
    """A provider remark, on one line and bounded (shown to the operator as given)."""
    text = " ".join(str(value or "").split())
    return text[:120] or "-"
